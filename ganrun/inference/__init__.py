"""After training: what a trained task can do (``model``: samplers and translators), reading
checkpoints and exports for it (``loading``, ``exports``), and writing its outputs."""
