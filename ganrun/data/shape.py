"""What a data set tells the networks about itself (``data_shape``: image size, channels,
classes, a vocabulary...), checked where it is read back from a file (a checkpoint, an export):
a value of another type or out of range is one paragraph naming the field, not a crash deep in
a network."""

from __future__ import annotations

from ganrun.errors import UserError

# field -> (lowest, highest) for the integer fields a data set may give
INTEGERS = {"image_size": (1, 1 << 16), "channels": (1, 64), "channels_a": (1, 64),
            "channels_b": (1, 64), "num_classes": (0, 1 << 20), "max_length": (1, 4096)}
REQUIRED = ("image_size",)
MAX_VOCABULARY = 1_000_000


def check_data_shape(shape, source: str) -> None:
    if not isinstance(shape, dict):
        raise _bad(source, "data_shape", f"is {type(shape).__name__} data, not a mapping")
    if "channels" not in shape and not ("channels_a" in shape and "channels_b" in shape):
        raise _bad(source, "data_shape.channels", "is missing")
    for key in REQUIRED:
        if key not in shape:
            raise _bad(source, f"data_shape.{key}", "is missing")
    for key, (low, high) in INTEGERS.items():
        value = shape.get(key)
        if value is None and key not in REQUIRED:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _bad(source, f"data_shape.{key}", f"is {str(value)[:40]!r}, not an integer "
                                                    f"from {low} to {high}")
    names = shape.get("class_names")
    if names is not None and (not isinstance(names, list) or
                              not all(isinstance(n, str) for n in names)):
        raise _bad(source, "data_shape.class_names", "is not a list of names")
    if "vocabulary" in shape:
        words = shape["vocabulary"]
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words) or \
                not 2 <= len(words) <= MAX_VOCABULARY:
            raise _bad(source, "data_shape.vocabulary", "is not a list of words (strings)")
        if "max_length" not in shape:
            raise _bad(source, "data_shape.max_length", "is missing")


def _bad(source: str, key: str, problem: str) -> UserError:
    return UserError(f"{source}: its `{key}` {problem}. The file was edited or damaged, or was "
                     "not written by ganrun: save or export the model again.")
