"""Structured-config schemas: the shape and types of a composed ``ganrun train`` config.

Groups whose options build objects (``loss``, ``dataset``, ``model.generator``, ...) are typed
``Any`` here; their keys are checked against the signature of their ``_target_`` instead (see
``ganrun.config``), so a new network or loss needs no schema edit.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class ModelConfig:
    latent_dim: int = 100
    generator: Any = MISSING
    discriminator: Any = MISSING
    conditioning: Any = None  # a partial ganrun.nets.conditioning head: class-conditional model


@dataclass
class OptimizerConfig:
    lr: float = 2e-4  # interpolated into both optimizers by the option files
    generator: Any = MISSING
    discriminator: Any = MISSING


@dataclass
class HardwareConfig:
    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: Any = "auto"
    precision: str = "32-true"
    num_nodes: int = 1


@dataclass
class TrainerConfig:
    max_steps: Optional[int] = 5000  # iterations, i.e. generator updates
    max_epochs: Optional[int] = None
    n_critic: int = 1
    d_warmup_steps: int = 0  # D-only updates before alternating starts
    deterministic: bool = False
    compile: bool = False        # torch.compile G and D
    compile_backend: str = "inductor"
    cuda_graphs: bool = False    # CUDA graphs of each network's forward/backward (compiled)
    channels_last: bool = False  # NHWC memory format for the convolutions
    cudnn_benchmark: bool = True  # cuDNN times its algorithms once per input shape
    tf32: bool = False           # fp32 products and convolutions in TF32 on tensor cores
    keep_freed_memory: bool = True  # glibc malloc keeps freed buffers for reuse (faster on CPU)


@dataclass
class PathsConfig:
    data_dir: str = "data/"
    output_dir: str = MISSING
    cache_dir: str = "~/.cache/ganrun"


@dataclass
class MetricsConfig:
    every_n_iterations: int = 0  # 0: only at the end of training
    num_samples: int = 10000
    real_samples: Optional[int] = None
    real_stats: Optional[str] = None  # .npz of mu and sigma: FID without the real images' pass
    split: str = "test"
    evaluate: Dict[str, Any] = field(default_factory=dict)  # {name: GeneratorMetric config}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: Any = MISSING
    dataset: Any = MISSING
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    divergence: Any = MISSING
    # what is trained (ganrun.tasks); configs written before tasks existed are generation
    task: Any = field(default_factory=lambda: {"_target_": "ganrun.tasks.generation.build"})
    scheduler: Any = None  # a ganrun.training.schedules.Schedule, or null: constant learning rates
    augment: Any = None  # a ganrun.training.augment.DiffAugment, or null: D sees the images as they are
    ema: Any = None  # a partial ganrun.training.ema.GeneratorEMA, or null: no EMA
    regularizers: Dict[str, Any] = field(default_factory=dict)  # {name: Regularizer config}
    logger: Any = None
    callbacks: Dict[str, Any] = field(default_factory=dict)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: Optional[int] = None
    ckpt_path: Optional[str] = None
    resume: Optional[bool] = None  # null: continue the run folder's last.ckpt if there is one
    optimized_metric: Optional[str] = "metrics/fid"  # what train() returns (a study's objective)
    hparams_search: Any = None  # a SearchConfig, read by `ganrun tune` only


@dataclass
class EvalPathsConfig:
    cache_dir: str = "~/.cache/ganrun"


@dataclass
class EvalConfig:
    """The root config of ``ganrun eval`` (conf/eval.yaml)."""

    ckpt: Optional[str] = None
    trust_targets: List[str] = field(default_factory=list)
    data_root: Optional[str] = None
    real: Optional[str] = None
    fake: Optional[str] = None
    num_samples: int = 10000
    seed: int = 0
    device: str = "auto"
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    paths: EvalPathsConfig = field(default_factory=EvalPathsConfig)


@dataclass
class SearchConfig:
    """An ``hparams_search`` option: the Optuna study ``ganrun tune`` runs (conf/hparams_search)."""

    metric: str = "metrics/fid"  # reported at each metrics evaluation; the last one is final
    direction: str = "minimize"  # or maximize
    n_trials: int = 20           # trials in the study, counting those of earlier runs
    evaluations: int = 4         # metric evaluations per trial, the points where it may be pruned
    sampler: Any = None          # an optuna.samplers.* config; null: TPE
    pruner: Any = None           # an optuna.pruners.* config; null: no pruning
    params: Dict[str, Any] = field(default_factory=dict)  # key: {float|int|choice: ...}
    overrides: List[str] = field(default_factory=list)    # given to every trial first
    study_dir: Optional[str] = None  # null: outputs/tune/<search name>
