"""Data sets as LightningDataModules yielding (images in [-1, 1], int64 labels) batches; the
unpaired two-domain data sets for translation yield dict batches {"A": ..., "B": ...}."""

from ganrun.data.base import GANDataModule, TensorImages
from ganrun.data.cifar10 import CIFAR10
from ganrun.data.folder import CelebA, ImageFolder
from ganrun.data.mnist import MNIST, FashionMNIST
from ganrun.data.unpaired import FashionDomains, UnpairedFolder

__all__ = ["GANDataModule", "TensorImages", "MNIST", "FashionMNIST", "CIFAR10", "ImageFolder", "CelebA",
           "UnpairedFolder", "FashionDomains"]
