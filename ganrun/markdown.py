"""Quoting text from files (overrides, run and job names, metric names, data folders) in the
Markdown ganrun writes (reports, model cards): the quoted text is shown as it is and can never
close a code block, start a link or an HTML tag, or break a table row."""

from __future__ import annotations

import re

SPECIAL = "\\`*_[]<>|#!$&~"


def one_line(text) -> str:
    """White space (newlines included) folded to single spaces."""
    return " ".join(str(text).split())


def escape(text) -> str:
    """Text shown literally, in a paragraph or a table cell."""
    text = one_line(text)
    return "".join("\\" + c if c in SPECIAL else c for c in text)


def fence_for(text: str) -> str:
    """A backtick fence longer than any run of backticks in ``text`` (CommonMark: such a
    fence is closed only by one at least as long)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code_block(text: str, info: str = "") -> list[str]:
    """The lines of a fenced code block holding ``text``."""
    fence = fence_for(text)
    return [fence + info, *text.splitlines(), fence]


def inline_code(text) -> str:
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def shell_word(word: str) -> str:
    """One word of a shell command: POSIX quoting, and ANSI-C quoting (``$'...'``) where it
    holds control characters such as a newline, so that a command stays on one line."""
    import shlex

    if not any(ord(c) < 32 or ord(c) == 127 for c in word):
        return shlex.quote(word)
    body = "".join({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c) or
                   (f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c) for c in word)
    return f"$'{body}'"
