"""What a trained task can do after training: the typed objects that ``ganrun sample``,
``translate``, ``eval``, ``export``, ``load_generator`` and the metrics use without knowing the
task.

A task returns one of these from ``Task.inference()``; a checkpoint or an export loads as one
(``ganrun.inference.loading``). Each holds only the networks inference needs (``nets``) and the
plain settings that rebuild it (``settings``: JSON in an export's ``config.json``), so an
export is ``state_dict()`` + ``export_config()``, and loading one is the reverse.

- ``Sampler``: latents (and conditions: class labels, text...) -> images. A subclass declares
  the extra keys ``ganrun sample`` takes for it (``Options``, a dataclass) and may offer its
  own grids (StyleGAN2's style mixing).
- ``Translator``: images (and masks) -> images, per direction; paired translators also give
  their test pairs and a non-learnt baseline to the metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable, Iterator, Optional

import torch
from torch import nn

from ganrun.errors import UserError
from ganrun.inference.latents import balanced_labels, interpolation_latents, seeded_latents


@contextlib.contextmanager
def eval_mode(*modules: nn.Module) -> Iterator[None]:
    """``modules`` in eval mode and without gradients for the block, their modes restored
    after: a sample never depends on its batch, and training goes on as it was."""
    modes = [module.training for module in modules]
    for module in modules:
        module.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in zip(modules, modes):
            module.train(mode)


class Inference(nn.Module):
    """Base class: ``nets`` (the networks this needs), ``data_shape`` (channels, image size,
    classes), ``settings`` (plain values that rebuild it with the nets)."""

    kind = "a trained model"        # for messages: "this checkpoint is {kind}"
    pipeline_tag = "other"          # what the Hugging Face hub calls it (the model card's)
    default_metrics = "fid"        # the `metrics=` option that fits it (ganrun eval's default)
    baseline_names: tuple[str, ...] = ()  # metrics suffixed _<name> measure a baseline, not it

    def __init__(self, nets: dict[str, nn.Module], data_shape: dict, **settings):
        super().__init__()
        self.nets = nn.ModuleDict(nets)
        self.data_shape = dict(data_shape)
        self.settings = settings

    @property
    def device(self) -> torch.device:
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    @property
    def sampler(self) -> "Sampler | None":
        return None

    @property
    def translator(self) -> "Translator | None":
        return None

    def export_config(self) -> dict:
        """``_target_`` (this class) and the settings: with the nets' configs, what rebuilds it."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}",
                **self.settings}


# ---- Samplers ---------------------------------------------------------------------------------

def key(default, text: str, page: bool = True, page_help: str | None = None):
    """A sampling key with the line ``ganrun sample ckpt=... --help`` shows for it. ``page``:
    whether ``ganrun demo`` offers it (a key naming a file on the machine never is: the page's
    visitors may not read the server's files); ``page_help``: the page's own line for it."""
    return dataclasses.field(default=default, metadata={"help": text, "page": page,
                                                        "page_help": page_help or text})


@dataclasses.dataclass
class SampleOptions:
    """The keys every sampler of latents takes beside ganrun sample's own."""

    label: Optional[int] = key(None, "conditional models: only this class; null: a balanced "
                                     "mix, saved as labels.csv (png) or the `labels` array (npz)",
                               page_help="only this class, or a balanced mix of all classes")
    truncation: Optional[float] = key(None, "latents from a normal truncated to +-truncation "
                                            "(BigGAN's trick: less variety, more fidelity); 0: "
                                            "every latent the mean")


def check_settings(sampler) -> None:
    """A sampler's settings (read from an export's file) fit its generator: the same latent
    size and classes, whole numbers in range."""
    for key, low in (("latent_dim", 1), ("num_classes", 0)):
        value = getattr(sampler, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise UserError(f"the sampler's `{key}` is {str(value)[:40]!r}, not an integer >= "
                            f"{low}")
    generator = sampler.nets["G"] if "G" in sampler.nets else None
    for key in ("latent_dim", "num_classes"):
        own = getattr(generator, key, None)
        if isinstance(own, int) and own != getattr(sampler, key) and \
                not (key == "num_classes" and not own and not getattr(sampler, key)):
            raise UserError(f"the sampler's `{key}` ({getattr(sampler, key)}) does not match its "
                            f"generator's ({own})")


class Sampler(Inference):
    """A generator of images from latents (and, for a conditional one, class labels).

    ``generate(z, conditions, options)`` is the one place images are made; everything else
    (seeded samples, interpolations, metric samples) draws latents and conditions and calls it.
    """

    kind = "an image generator (latents -> images)"
    pipeline_tag = "unconditional-image-generation"
    Options: type = SampleOptions
    conditions_file, conditions_column = "labels.csv", "label"  # what each sample was asked for

    def __init__(self, nets: dict[str, nn.Module], data_shape: dict, latent_dim: int,
                 num_classes: int = 0, **settings):
        super().__init__(nets, data_shape, latent_dim=latent_dim, num_classes=num_classes,
                         **settings)
        self.latent_dim, self.num_classes = latent_dim, num_classes
        check_settings(self)

    @property
    def sampler(self) -> "Sampler":
        return self

    @property
    def generator(self) -> nn.Module:
        return self.nets["G"]

    @property
    def class_names(self) -> list[str] | None:
        return self.data_shape.get("class_names")

    def options(self, **values) -> Any:
        """This sampler's Options from keyword values (a UserError for a key it lacks)."""
        known = {f.name for f in dataclasses.fields(self.Options)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"{', '.join(unknown)} does not apply to this model, {self.kind}; "
                            f"its sampling keys are {', '.join(sorted(known)) or 'none'}.")
        return self.Options(**values)

    def check(self, options) -> None:
        """A UserError for options this model cannot honour (a label out of range...)."""
        label = getattr(options, "label", None)
        if label is not None and not self.num_classes:
            raise UserError(f"label={label} was given, but this model's generator is "
                            "unconditional (it takes no class labels). Drop label=.")
        if label is not None and not 0 <= label < self.num_classes:
            raise UserError(f"label={label} is out of range: the model was trained on "
                            f"{self.num_classes} classes, so label must be 0 to "
                            f"{self.num_classes - 1}.")
        truncation = getattr(options, "truncation", None)
        if truncation is not None and truncation < 0:
            raise UserError(f"truncation must be 0 or more, got {truncation}.")

    # Inputs.

    def latents(self, num: int, seed: int, options=None) -> torch.Tensor:
        """``num`` latents for ``seed`` (CPU): latent i depends on the seed alone."""
        truncation = getattr(options, "truncation", None)
        if truncation is not None:
            return truncated_latents(num, self.latent_dim, seed, truncation)
        return seeded_latents(num, self.latent_dim, seed)

    def conditions(self, num: int, options=None) -> torch.Tensor | None:
        """The labels of ``num`` samples: the one asked for, else a balanced mix; None for an
        unconditional generator."""
        if not self.num_classes:
            return None
        label = getattr(options, "label", None)
        if label is None:
            return balanced_labels(num, self.num_classes)
        return torch.full((num,), label, dtype=torch.long)

    def condition_rows(self, conditions) -> list[str] | None:
        """What each sample was asked for, for labels.csv (None: nothing to write)."""
        return None if conditions is None else [str(int(k)) for k in conditions]

    def count(self, num: int, options=None) -> int:
        """How many samples ``num`` asks for (a sampler whose options list its inputs, e.g.
        captions from a file, makes one per input)."""
        return num

    def file_names(self, num: int, options=None) -> list[str] | None:
        """The PNG names of ``num`` samples; None: sample_000000.png, ..."""
        return None

    def slice(self, conditions, start: int, stop: int):
        return None if conditions is None else conditions[start:stop]

    # Images.

    def generate(self, z: torch.Tensor, conditions=None, options=None) -> torch.Tensor:
        """Images in [-1, 1] (fp32, on this model's device) of latents ``z``."""
        device = self.device
        labels = None if conditions is None else conditions.to(device)
        with eval_mode(self.generator):
            return self.generator(z.to(device), labels).float()

    def samples(self, num: int, seed: int, options=None,
                batch_size: int = 256) -> Iterator[tuple[int, torch.Tensor]]:
        """(start index, images on the CPU) batch by batch: ``ganrun sample``'s images."""
        z = self.latents(num, seed, options)
        conditions = self.conditions(num, options)
        for start in range(0, num, batch_size):
            stop = min(start + batch_size, num)
            yield start, self.generate(z[start:stop], self.slice(conditions, start, stop),
                                       options).cpu()

    def interpolation(self, rows: int, steps: int, seed: int, spherical: bool = True,
                      options=None) -> torch.Tensor:
        """``rows * steps`` images, row-major: each row a path between two random latents."""
        z = interpolation_latents(rows, steps, self.latent_dim, seed, spherical)
        conditions = self.conditions(rows, options)
        if conditions is not None:
            conditions = conditions.repeat_interleave(steps)
        return self.batched(z, conditions, options)

    def special_grid(self, num: int, nrow: int | None, seed: int,
                     options) -> tuple[str, torch.Tensor, int] | None:
        """A grid of this model's own (file name, images, images per row) when ``options`` ask
        for one (StyleGAN2's style mixing), else None."""
        return None

    def batched(self, z, conditions, options, batch_size: int = 256) -> torch.Tensor:
        return torch.cat([self.generate(z[i:i + batch_size],
                                        self.slice(conditions, i, i + batch_size), options).cpu()
                          for i in range(0, len(z), batch_size)])

    def metric_samples(self) -> Callable[[int], torch.Tensor]:
        """``n -> n`` new images with random latents and balanced conditions, for metrics."""
        return lambda n: self.generate(torch.randn(n, self.latent_dim, device=self.device),
                                       self.conditions(n))


def truncated_latents(num: int, dim: int, seed: int, threshold: float) -> torch.Tensor:
    """Standard normal latents truncated to [-threshold, threshold], drawn from ``seed``; 0 is
    the limit, every latent the mean (zeros), as truncation=0 is the mean w for StyleGAN2."""
    if not 0 <= threshold < math.inf:
        raise UserError(f"truncation must be 0 or more and finite, got {threshold}")
    if threshold == 0:
        return torch.zeros(num, dim)
    z = torch.empty(num, dim)
    return torch.nn.init.trunc_normal_(z, a=-threshold, b=threshold,
                                       generator=torch.Generator().manual_seed(seed))


def square_nrow(num: int) -> int:
    return max(1, math.ceil(math.sqrt(num)))


# ---- Translators ------------------------------------------------------------------------------

class Translator(Inference):
    """Images of a source domain -> images of a target domain, per direction."""

    kind = "a translator (images -> images)"
    pipeline_tag = "image-to-image"
    default_metrics = "translation"
    directions: tuple[str, ...] = ("AtoB",)
    scale = 1            # output side / input side (super-resolution: 2, 4...)
    size_multiple = 4    # input sides are padded to a multiple of this
    takes_mask = False   # inpainting: a mask (1 = hole) rides along with each input
    paired = False       # trained on (input, target) pairs: test_pairs() gives the metrics some

    @property
    def translator(self) -> "Translator":
        return self

    def input_channels(self, direction: str = "AtoB") -> int:
        raise NotImplementedError

    def check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise UserError(f"direction={direction} is not a direction of this model, "
                            f"{self.kind}: it translates {' and '.join(self.directions)}"
                            + ("; leave out direction=." if len(self.directions) == 1 else "."))

    def inputs(self, images: torch.Tensor, masks: torch.Tensor | None = None,
               seeds: list[int] | None = None) -> torch.Tensor:
        """What the network takes for source ``images`` (an inpainting model: the holes cut
        and the mask channel added; ``masks`` None: its own test masks, one per seed)."""
        return images

    def translate(self, inputs: torch.Tensor, direction: str = "AtoB") -> torch.Tensor:
        """Outputs in [-1, 1] (fp32) of ``inputs`` (shaped by ``inputs()``), in eval mode."""
        raise NotImplementedError

    # What the paired metrics read (metrics=paired); a translator without pairs returns None.

    def test_pairs(self, data, n: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The first ``n`` (input, target) test pairs of ``data``, the same on every run."""
        return None

    def baseline(self, inputs: torch.Tensor) -> tuple[str, torch.Tensor] | None:
        """(name, outputs) of the obvious non-learnt translation, or None."""
        return None

    def hole(self, inputs: torch.Tensor) -> torch.Tensor | None:
        """An inpainting input's mask (1 = hole), else None."""
        return None
