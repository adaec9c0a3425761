"""Training callbacks; each is configured as one entry of the ``callbacks`` config group."""
