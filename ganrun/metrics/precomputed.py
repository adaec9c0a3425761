"""A stand-in feature network for torchmetrics' metrics, fed with features extracted once."""

from torch import nn


class Precomputed(nn.Module):
    """Identity with a ``num_features``: torchmetrics' FID/KID/IS accept any module as their
    feature network, so they keep their own statistics and formulas while the Inception runs
    once for all of them (see ``ganrun.metrics.inception``)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, features):
        return features
