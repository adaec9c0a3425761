"""What is trained: a task owns its networks, the update phases of a batch and their losses,
and what it can do after training (``Task.inference()``); the runner
(``ganrun.runner.module``) schedules the phases and applies the updates."""


def build_task(cfg, shape: dict):
    """The task of ``cfg.task``: its ``_target_`` is a builder ``(cfg, shape, **options)``
    called directly rather than through instantiate, which would instantiate every node of
    the whole config passed to it."""
    from hydra.utils import get_object

    options = {k: v for k, v in cfg.task.items() if k != "_target_"}
    return get_object(cfg.task._target_)(cfg, shape, **options)
