"""Fashion-MNIST (Xiao et al. 2017, MIT licence): 60,000 training and 10,000 test images, 28x28 grey.

Looked for, in order: a folder the user gives; $EDGEKIT_DATA/fashion-mnist; Debian's package
`dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist); edgekit's cache; and, only when none of
those holds the files, a download from the official source into the cache.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np
import torch

from edgekit.data.dataset import Dataset, Split
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_bytes
from edgekit.paths import cache_root

log = logging.getLogger(__name__)

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "val_images": "t10k-images-idx3-ubyte.gz",
    "val_labels": "t10k-labels-idx1-ubyte.gz",
}
URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# Statistics of the 60,000 training images; fixed so every run and export normalizes identically.
MEAN, STD = (0.2860,), (0.3530,)


def cache_dir() -> Path:
    return cache_root("fashion-mnist")


def candidate_dirs(root: str | Path | None) -> list[Path]:
    if root is not None:
        return [Path(root)]
    dirs = []
    if os.environ.get("EDGEKIT_DATA"):
        dirs.append(Path(os.environ["EDGEKIT_DATA"]) / "fashion-mnist")
    return dirs + [DEBIAN_DIR, cache_dir()]


def has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file as written by LeCun's MNIST tools: big-endian header, uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not a uint8 IDX file")
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (OSError, ValueError, struct.error, EOFError) as exc:
        raise EdgekitError(
            f"{path} is not a readable IDX file ({exc}): replace it with the original Fashion-MNIST file"
        ) from None


def download(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        if (folder / name).is_file():
            continue
        log.info(f"downloading {URL}{name}")
        with urllib.request.urlopen(URL + name, timeout=30) as resp:
            atomic_write_bytes(folder / name, resp.read())


def locate(root: str | Path | None = None, allow_download: bool = True) -> Path:
    dirs = candidate_dirs(root)
    for folder in dirs:
        if has_files(folder):
            return folder
    if root is not None:
        missing = [n for n in FILES.values() if not (Path(root) / n).is_file()]
        raise EdgekitError(
            f"data folder {root} lacks Fashion-MNIST files {', '.join(missing)}: put the four *-ubyte.gz files there"
        )
    if allow_download:
        try:
            download(cache_dir())
            return cache_dir()
        except OSError as exc:
            reason = f"download failed ({exc})"
    else:
        reason = "downloads disabled"
    raise EdgekitError(
        f"Fashion-MNIST not found and {reason}: run `sudo apt-get install dataset-fashion-mnist`, "
        f"or put the four *-ubyte.gz files in $EDGEKIT_DATA/fashion-mnist or {cache_dir()}"
    )


def load(root: str | Path | None = None, allow_download: bool = True) -> Dataset:
    folder = locate(root, allow_download)
    arrays = {key: read_idx(folder / name) for key, name in FILES.items()}

    def split(prefix: str) -> Split:
        images = torch.from_numpy(arrays[f"{prefix}_images"].copy()).unsqueeze(1)
        labels = torch.from_numpy(arrays[f"{prefix}_labels"].astype(np.int64))
        if images.shape[0] != labels.shape[0]:
            raise EdgekitError(
                f"{folder}: {prefix} images and labels differ in count: replace the files with the originals"
            )
        return Split(images, labels)

    return Dataset("fashion_mnist", split("train"), split("val"), list(CLASSES), MEAN, STD, str(folder))
