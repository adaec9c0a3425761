"""OmegaConf resolvers used by ganrun's configs (registered when ganrun.config is imported)."""

from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf



def job_gpu() -> list[int]:
    """``[k mod GPUs]`` for sweep job k: parallel jobs (hydra/launcher=parallel, n_jobs = GPUs)
    each train on their own GPU instead of all on GPU 0. Without a GPU: 1, and Lightning's
    GPU accelerator says that there is none."""
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return 1
    num = HydraConfig.get().job.get("num") if HydraConfig.initialized() else None
    return [int(num or 0) % count]


def register() -> None:
    OmegaConf.register_new_resolver("ganrun.job_gpu", job_gpu, replace=True)
