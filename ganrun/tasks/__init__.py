"""Tasks: what is trained. A task owns its networks, names its players (the parameters one
optimizer steps) and its update phases, and computes one phase's loss from a batch; the runner
(``ganrun.runner.module``) schedules the phases and applies the updates."""
