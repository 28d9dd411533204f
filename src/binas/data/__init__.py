"""binas.data: data sets (digits by default), search splits, deterministic loaders, tensor augmentation.

`load_dataset(name, split)` builds a registered data set; `split_train_val` makes the search split;
`make_loader` gives a DataLoader whose order depends only on (seed, epoch). Nothing here needs
torchvision or network access (`download_cifar10` is an explicit, optional helper).
"""

from binas.data.base import SPLITS, DatasetInfo, ImageDataset, InMemoryImageDataset
from binas.data.cifar import CIFAR10_MEAN, CIFAR10_STD, load_cifar10
from binas.data.datasets import (
    DATASETS,
    DEFAULT_DATASET,
    DIGITS_IMAGE_SIZE,
    dataset_info,
    load_dataset,
    load_digits,
    load_training_set,
    make_synthetic,
)
from binas.data.download import download_cifar10
from binas.data.imagefolder import IMAGENET_MEAN, IMAGENET_STD, ImageFolderDataset, load_imagenet
from binas.data.loaders import EpochShuffleSampler, make_loader, split_train_val, supports_batch_indexing
from binas.data.transforms import cutout, random_crop_flip

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "DEFAULT_DATASET",
    "DIGITS_IMAGE_SIZE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SPLITS",
    "DatasetInfo",
    "EpochShuffleSampler",
    "ImageDataset",
    "ImageFolderDataset",
    "InMemoryImageDataset",
    "cutout",
    "dataset_info",
    "download_cifar10",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "load_imagenet",
    "load_training_set",
    "make_loader",
    "make_synthetic",
    "random_crop_flip",
    "split_train_val",
    "supports_batch_indexing",
]
