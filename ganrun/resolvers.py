"""OmegaConf resolvers used by ganrun's configs (registered when ganrun.config is imported)."""

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf



def job_gpu() -> int | list[int]:
    """``[k mod GPUs]`` for sweep job k: parallel jobs (hydra/launcher=parallel, n_jobs = GPUs)
    each train on their own GPU instead of all on GPU 0. Without a GPU: 1, and Lightning's
    GPU accelerator says that there is none."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return 1
    num = HydraConfig.get().job.get("num") if HydraConfig.initialized() else None
    return [int(num or 0) % count]


def group_options(group: str) -> str:
    """The options of a group of ganrun's configs, for a help text."""
    from ganrun.config import config_dir

    return ", ".join(sorted(p.stem for p in (config_dir() / group).glob("*.yaml")))


def register() -> None:
    from ganrun.choices import in_use

    # omegaconf 2.4 deprecates register_new_resolver for register_resolver (which in 2.3 is
    # the legacy one, without `replace`).
    import omegaconf

    new = tuple(int(p) for p in omegaconf.__version__.split(".")[:2]) >= (2, 4)
    add = OmegaConf.register_resolver if new else OmegaConf.register_new_resolver
    add("ganrun.job_gpu", job_gpu, replace=True)
    add("ganrun.choices", in_use, replace=True)
    add("ganrun.group_options", group_options, replace=True)
