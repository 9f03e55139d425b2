"""Data sets: the built-in Fashion-MNIST, or an image folder given by path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.config import ranged
from edgekit.data.dataset import Dataset, Split
from edgekit.data.reshape import resized, with_channels
from edgekit.errors import EdgekitError

BUILTIN = ("fashion_mnist",)


@dataclass
class DataConfig:
    """`name`: a built-in data set (fashion_mnist) or a path to an image folder.
    `root`: folder holding the built-in set's files (default: searched, see edgekit.data.fashion_mnist).
    `image_size`: square size image folders are resized to (null: the images' own size, never upscaled,
    at most the model's default input size). `val_fraction`/`seed`: split of an image
    folder without train/ and val/. `train_limit`: use only the first N training images (0 = all).
    `channels`: 3 turns grayscale into RGB by repeating the channel (for weights trained on RGB images,
    e.g. ImageNet; the built-in Fashion-MNIST is grayscale); null keeps the data's own.
    `strict`: refuse an image folder holding unreadable images (default: skip them with a warning on
    stderr and count them in the run's data info)."""

    name: str = "fashion_mnist"
    root: str | None = None
    image_size: int | None = None
    val_fraction: float = 0.2
    seed: int = 0
    train_limit: int = 0
    strict: bool = False
    channels: int | None = ranged(None, 1, 4)


def load_data(cfg: DataConfig, max_size: int = 224) -> Dataset:
    """The data set `cfg` names; an image folder without `image_size` is read at its images' own size,
    at most `max_size` (the model's default input size)."""
    from edgekit.data import fashion_mnist

    if cfg.name in BUILTIN:
        data = fashion_mnist.load(cfg.root)
    elif fashion_mnist.has_files(Path(cfg.name)):  # a folder holding the original IDX files
        data = fashion_mnist.load(cfg.name)
    elif "/" in cfg.name or Path(cfg.name).exists():
        from edgekit.data import image_folder

        data = image_folder.load(cfg.name, cfg.image_size, cfg.val_fraction, cfg.seed, cfg.strict, max_size)
    else:
        raise EdgekitError(
            f"unknown data set {cfg.name!r} and no such folder: use one of {', '.join(BUILTIN)} or a path to an image "
            "folder"
        )
    if cfg.train_limit:
        data.train = data.train.subset(slice(0, cfg.train_limit))  # type: ignore[arg-type]
    if cfg.image_size and data.input_size[-1] != cfg.image_size:  # a built-in set at another size, asked for
        data = resized(data, cfg.image_size)
    if cfg.channels and data.input_size[0] != cfg.channels:
        data = with_channels(data, cfg.channels)
    return data


__all__ = ["DataConfig", "Dataset", "Split", "load_data"]
