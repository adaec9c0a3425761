"""The runner: one LightningModule that trains any task with manual optimization.

For every batch, each of the task's phases that is due runs in order: toggle its player's
optimizer, compute the phase's loss, ``update()`` (backward, a finite check that skips the step
on the device, step), untoggle. Nothing in an update waits for the device: the host reads the
finite checks (``ganrun.runner.health``) at the logging cadence and before each checkpoint,
where the divergence policy acts. Counters per phase and of batches live in one dict and are checkpointed, so a
resume continues warm-up, ``n_critic`` cycles and lazy intervals exactly. ``iteration`` (the
updates of the task's iteration phase, not Lightning's ``global_step``, which counts every
optimizer step) is the run length, the checkpoint cadence and the x-axis of every log.
"""

import logging
from types import MappingProxyType
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from torch.autograd.profiler import record_function

from ganrun.runner.checkpoints import SECTION, RunState, run_state
from ganrun.runner.divergence import DivergencePolicy, Stop
from ganrun.private_apis import grad_scaler_scale as scale_of
from ganrun.runner.health import Event, Health, largest_weight, restore_unless, step_unless
from ganrun.runner.loop_state import canonical_loop_state
from ganrun.runner.rng import rng_states, set_rng_states
from ganrun.training.schedules import Constant, Schedule
from ganrun.tasks.base import Step, Task

OptimizerFactory = Callable[[Any], torch.optim.Optimizer]
log = logging.getLogger("ganrun")


def logging_cadence(trainer, default: int) -> int:
    """The scalar logger's cadence (callbacks.scalars.every_n_iterations): the finite checks
    are read as often as the losses are."""
    from ganrun.callbacks.scalars import ScalarLogger

    for callback in trainer.callbacks:
        if isinstance(callback, ScalarLogger) and callback.every_n_iterations > 0:
            return callback.every_n_iterations
    return default


def all_ranks_any(flag: torch.Tensor) -> torch.Tensor:
    """``flag`` or'ed over the DDP ranks, on the device (every rank then skips alike)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        flag = flag.to(torch.int32)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return flag.bool()


def hyperparameters(group: dict) -> dict:
    """An optimizer param group's settings: everything but its parameters and current rate
    (which the schedule sets from ``initial_lr``)."""
    return {k: v for k, v in group.items() if k not in ("params", "lr")}


class Runner(pl.LightningModule):
    def __init__(self, task: Task, optimizers: dict[str, OptimizerFactory],
                 schedule: Schedule | None = None, divergence: DivergencePolicy | None = None,
                 max_iterations: int | None = None, config: dict | None = None,
                 choices: dict | None = None, data_shape: dict | None = None):
        super().__init__()
        self.automatic_optimization = False
        self.task = task
        self.optimizer_factories = optimizers
        self.schedule = schedule or Constant()
        self.divergence = divergence or Stop()
        self.max_iterations = max_iterations
        # The resolved run config and its group choices travel in every checkpoint.
        self.config, self.choices, self.data_shape = config, choices or {}, data_shape
        self.counters = {"batches": 0, **{phase.name: 0 for phase in task.phases()}}
        self.iteration = 0
        # Per player: the factor divergence=rollback applies on top of the schedule.
        self.lr_scale = {player: 1.0 for player in task.players()}
        self.stats: dict[str, torch.Tensor] = {}
        self._phase_stats: dict[str, dict] = {}  # each phase's stats of its latest update
        # Batches drawn in the current epoch, so a resumed run can continue the data order.
        self.data_position = {"epoch": 0, "batches": 0}
        self._restored_rng: dict | None = None
        self._first_batch = True
        self.health = Health()
        self.metrics_now: dict[str, float] = {}  # the metrics evaluated at this iteration
        self.total_iterations = max_iterations  # with max_epochs: see planned_iterations()
        self.check_every = 50  # iterations between reads of the finite checks: the log cadence

    def configure_optimizers(self):
        optimizers = []
        self._configured = {}
        for player in self.task.players():
            optimizer = self.optimizer_factories[player](self.task.player_parameters(player))
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])  # the schedule's base rate
            self._configured[player] = [hyperparameters(g) for g in optimizer.param_groups]
            optimizers.append(optimizer)
        return optimizers

    def apply_configured_hyperparameters(self) -> None:
        """The run config's optimizer settings (learning rate, betas, ...) over the ones a
        resumed run's optimizer states restored: a resumed run uses the rate its config says."""
        for player, optimizer in self.player_optimizers().items():
            for group, configured in zip(optimizer.param_groups, self._configured[player]):
                changed = {k: (group.get(k), v) for k, v in configured.items() if group.get(k) != v}
                if changed:
                    log.info("Resumed %s optimizer with the config's %s", player, ", ".join(
                        f"{'lr' if k == 'initial_lr' else k} {old} -> {new}"
                        for k, (old, new) in changed.items()))
                group.update(configured)

    def player_optimizers(self) -> dict[str, Any]:
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return dict(zip(self.task.players(), optimizers))

    def on_train_start(self):
        # After Lightning restored the optimizer states of a resumed run.
        self.apply_configured_hyperparameters()
        self._first_batch = True
        self.check_every = logging_cadence(self.trainer, self.check_every)
        self.total_iterations = self.planned_iterations()

    def planned_iterations(self) -> int | None:
        """The iteration the run ends at: ``max_steps`` or the end of ``max_epochs``, whichever
        comes first; the epochs counted in this rank's batches and the task's phases (an
        iteration every n_critic batches after the warm-up, ...). None when neither is set."""
        limits = [self.max_iterations] if self.max_iterations else []
        epochs, per_epoch = self.trainer.max_epochs, self.trainer.num_training_batches
        if epochs and epochs > 0 and per_epoch and per_epoch != float("inf"):
            phase = next(p for p in self.task.phases() if p.name == self.task.iteration_phase)
            batches = epochs * int(per_epoch)
            limits.append(0 if batches < phase.start else
                          (batches - phase.start) // phase.interval + 1)
        return min(limits) if limits else None

    def stop_reason(self) -> str:
        """What ended a run that was not stopped by a signal or an error."""
        if self.max_iterations and self.iteration >= self.max_iterations:
            return f"trainer.max_steps={self.max_iterations} reached"
        epochs = self.trainer.max_epochs
        return f"trainer.max_epochs={epochs} reached (iteration {self.iteration})"

    def on_train_batch_start(self, batch, batch_idx):
        # Restored here rather than at load time: Lightning draws random numbers between
        # loading a checkpoint and the first batch, the uninterrupted run did not.
        if self._restored_rng is not None:
            set_rng_states(self._restored_rng)
            self._restored_rng = None
        if self._first_batch and self.trainer.world_size > 1:
            # Every rank was seeded alike; without this they would all draw the same latents.
            seed = (self.config or {}).get("seed") or 0
            torch.manual_seed(seed + 1_000_003 * self.iteration + self.global_rank)
        self._first_batch = False

    def training_step(self, batch, batch_idx):
        if self.max_iterations and self.iteration >= self.max_iterations:
            # A run resumed at its end (to evaluate what it had not): no update.
            self.trainer.should_stop = True
            return
        self._count_batch()
        self.counters["batches"] += 1
        self.apply_schedule()
        optimizers = self.player_optimizers()
        iteration = self.iteration
        batch = self.task.begin_batch(batch, self.step())
        for phase in self.task.phases():
            if phase.due(self.counters["batches"]):
                self.run_phase(phase, optimizers[phase.player], batch)
        if self.iteration == iteration:
            return
        finished = bool(self.max_iterations and self.iteration >= self.max_iterations)
        if finished or self.iteration % self.check_every == 0 or self.iteration == 1:
            self.check_health()
        latest = {tag: value for stats in self._phase_stats.values() for tag, value in stats.items()}
        self.stats = {**latest, **self.lr_stats(), **self.divergence.stats()}
        # A phase's stats are logged with the iteration it ran in (lazy phases: not repeated
        # at the iterations between, which a resumed run could not repeat).
        self._phase_stats = {}
        if finished:
            self.trainer.should_stop = True

    def check_health(self) -> None:
        """Reads the finite checks of the updates since the last read (a device sync) and the
        largest weight, and lets the divergence policy act on what it finds."""
        event = self.health.read()
        if event is not None:
            self.divergence.handle(self, event)
        bound = getattr(self.divergence, "max_weight", None)
        if bound:
            name, largest = largest_weight(self.task.nets)
            if not largest <= bound:
                self.divergence.handle(self, Event(1, self.iteration, name, 0.0, 1, largest))

    def run_phase(self, phase, optimizer, batch) -> None:
        # Named regions for profilers (torch.profiler, Nsight through NVTX): "phase D: loss"...
        self.toggle_optimizer(optimizer)
        # The phase's forward passes move buffers (running statistics...): a skipped update
        # puts them back too.
        buffers = [b for b in self.task.nets.buffers() if b.is_floating_point()]
        saved = [b.detach().clone() for b in buffers]
        with record_function(f"phase {phase.name}: loss"):
            loss, stats = self.task.phase_loss(phase, batch, self.step())
        with record_function(f"phase {phase.name}: update"):
            grad_norm, bad = self.update(optimizer, loss,
                                         self.task.player_parameters(phase.player),
                                         f"loss/{phase.name.lower()}")
            restore_unless(buffers, saved, bad)
        self.untoggle_optimizer(optimizer)
        self.counters[phase.name] += 1
        if phase.name == self.task.iteration_phase:
            self.iteration += 1
        self.task.after_update(phase, batch, self.step())
        self._phase_stats[phase.name] = {**stats, f"grad_norm/{phase.player.lower()}": grad_norm}

    def step(self) -> Step:
        """What the task may know of the run now (see ``ganrun.tasks.base.Step``)."""
        return Step(self.counters["batches"], self.iteration, MappingProxyType(self.counters),
                    self.trainer.world_size)

    def update(self, opt, loss: torch.Tensor, params: list,
               tag: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward and step, the step undone on the device where the loss or the gradient is
        not finite (nothing here waits for the device). Returns the gradient norm (unscaled
        under fp16) and whether the update was skipped (a device tensor)."""
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        grads = [p.grad for p in params if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads).detach()
        finite = torch.isfinite(loss.detach())
        if scaler is None:
            finite = finite & torch.isfinite(grad_norm)
        else:
            # Inf gradients are routine under loss scaling: the scaler skips those steps itself.
            grad_norm = grad_norm / scale_of(scaler)
        bad = all_ranks_any(~finite)
        self.health.record(bad, tag, loss, self.iteration + 1)
        if scaler is None:
            step_unless(opt.optimizer, opt.step, bad)
        else:
            opt.step()  # a non-finite loss has non-finite gradients: the scaler skips the step
        return grad_norm, bad

    def apply_schedule(self) -> None:
        """Every optimizer's rate: base rate x the schedule's factor x the player's scale."""
        step = self.data_position["epoch"] if self.schedule.unit == "epoch" else self.iteration
        factor = self.schedule.factor(step)
        for player, optimizer in self.player_optimizers().items():
            for group in optimizer.param_groups:
                base = group.setdefault("initial_lr", group["lr"])  # older checkpoints lack it
                group["lr"] = base * factor * self.lr_scale[player]

    def lr_stats(self) -> dict[str, float]:
        return {f"lr/{player.lower()}": optimizer.param_groups[0]["lr"]
                for player, optimizer in self.player_optimizers().items()}

    def on_train_end(self):
        self.check_health()

    def _count_batch(self) -> None:
        if self.trainer.current_epoch != self.data_position["epoch"]:
            self.data_position = {"epoch": self.trainer.current_epoch, "batches": 0}
        self.data_position["batches"] += 1

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[SECTION] = RunState(
            config=self.config, data_shape=self.data_shape, iteration=self.iteration,
            counters=dict(self.counters), lr_scale=dict(self.lr_scale), choices=self.choices,
            data_position=dict(self.data_position), rng=rng_states(),
            metrics=dict(self.metrics_now)).to_dict()
        canonical_loop_state(checkpoint.get("loops", {}), **self.data_position,
                             batches_per_epoch=self.trainer.num_training_batches)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = run_state(checkpoint)
        self.iteration = state.iteration
        self.counters.update(state.counters)
        self.lr_scale.update(state.lr_scale)
        self.data_position = dict(state.data_position)
        self._restored_rng = state.rng
        self.metrics_now = dict(state.metrics)
