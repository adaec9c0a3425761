"""Data sets as LightningDataModules yielding (images in [-1, 1], int64 labels) batches."""

from ganrun.data.base import GANDataModule, TensorImages
from ganrun.data.cifar10 import CIFAR10
from ganrun.data.folder import CelebA, ImageFolder
from ganrun.data.mnist import MNIST, FashionMNIST

__all__ = ["GANDataModule", "TensorImages", "MNIST", "FashionMNIST", "CIFAR10", "ImageFolder", "CelebA"]
