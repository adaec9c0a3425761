"""The sub-commands of ``ganrun`` (train, eval, sample, translate, export, report, fid-weights,
fid-stats), one module each; they share helpers through modules outside this package (and
``keyvalue``/``hydra_app`` here), never through each other's private functions."""
