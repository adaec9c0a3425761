"""The training runner and its mechanics: the LightningModule that drives a task's phases
(``module``), building it from a config (``build``), checkpoints and resuming (``checkpoints``,
``resume``, ``loop_state``, ``rng``), seeds, devices, run folders and speed switches."""
