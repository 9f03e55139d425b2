"""Fashion-MNIST (Xiao et al. 2017, MIT licence): 60,000 training and 10,000 test images, 28x28 grey.

Looked for, in order: a folder the user gives; $EDGEKIT_DATA/fashion-mnist; Debian's package
`dataset-fashion-mnist` (/usr/share/datasets/fashion-mnist); edgekit's cache; and, only when none of
those holds the files, a download over https from the zalando repository into the cache, checked
against the published SHA-256 before it lands.

Copies edgekit finds by itself (Debian's, the cache) are checked against the published data: a damaged
one is skipped (Debian's, which is not edgekit's to delete) or discarded and downloaded again (the
cache's), with a warning. A copy the user names ($EDGEKIT_DATA, data.root, a folder) is used as given,
since a subset or a variant of the set in the same format is a legitimate choice (tests/data ships a
1,500-image slice); a file that claims the full set's size but differs from it gets a warning.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from edgekit.cache import discard
from edgekit.data.dataset import Dataset, Split
from edgekit.errors import EdgekitError
from edgekit.fileio import download_verified
from edgekit.paths import cache_root

log = logging.getLogger(__name__)

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "val_images": "t10k-images-idx3-ubyte.gz",
    "val_labels": "t10k-labels-idx1-ubyte.gz",
}
# The zalando repository at a fixed commit: https (the S3 website host the README links is http only)
# and files that cannot change under the same URL.
REVISION = "b2617bb6d3ffa2e429640350f613e3291e10b141"
URL = f"https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/{REVISION}/data/fashion/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
# Statistics of the 60,000 training images; fixed so every run and export normalizes identically.
MEAN, STD = (0.2860,), (0.3530,)


class Published(NamedTuple):
    """A file as published: its item count, the SHA-256 of the .gz and of its decompressed IDX bytes.
    Local copies are checked by the latter: Debian's package rewrites the gzip headers (drops the file
    name, resets the time), so its .gz files differ from the originals while their data is the same."""

    items: int
    gz_sha256: str
    idx_sha256: str


# The .gz hashes are those of the files whose MD5s the Fashion-MNIST README publishes (8d4fb7e6...,
# 25c81989..., bef4ecab..., bb300cfd...); the IDX hashes were computed from them.
PUBLISHED = {
    "train-images-idx3-ubyte.gz": Published(
        60_000,
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": Published(
        60_000,
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": Published(
        10_000,
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": Published(
        10_000,
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}
LOCAL_COPY = (
    "sudo apt-get install dataset-fashion-mnist, or put the four *-ubyte.gz files in $EDGEKIT_DATA/fashion-mnist"
)
_warned: set[tuple[str, str]] = set()  # (file, hash) told about once per process, not on every load


def cache_dir() -> Path:
    return cache_root("fashion-mnist")


def _sources(root: str | Path | None) -> list[tuple[Path, str]]:
    """(folder, kind) in search order; kind is "given" (named by the user), "system" or "cache"."""
    if root is not None:
        return [(Path(root), "given")]
    sources = []
    if os.environ.get("EDGEKIT_DATA"):
        sources.append((Path(os.environ["EDGEKIT_DATA"]) / "fashion-mnist", "given"))
    return sources + [(DEBIAN_DIR, "system"), (cache_dir(), "cache")]


def has_files(folder: Path) -> bool:
    return all((folder / name).is_file() for name in FILES.values())


def read_idx(path: Path) -> np.ndarray:
    """Read a (gzipped) IDX file as written by LeCun's MNIST tools: big-endian header, uint8 data."""
    return parse_idx(_decompressed(path), path)


def _gunzip(path: Path) -> bytes:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return f.read()  # gzip checks its CRC at the end: a damaged .gz fails here


def _decompressed(path: Path) -> bytes:
    try:
        return _gunzip(path)
    except (OSError, EOFError) as exc:
        raise _unreadable(path, exc) from None


def parse_idx(data: bytes, path: Path) -> np.ndarray:
    try:
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not a uint8 IDX file")
        shape = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
        return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)
    except (ValueError, struct.error) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path: Path, exc: Exception) -> EdgekitError:
    return EdgekitError(f"{path} is not a readable IDX file ({exc}): replace it with the original Fashion-MNIST file")


def _mismatch(path: Path, data: bytes) -> str | None:
    """Why the decompressed `data` of `path` is not the published file, or None when it is."""
    got = hashlib.sha256(data).hexdigest()
    want = PUBLISHED[path.name].idx_sha256
    return None if got == want else f"its data has SHA-256 {got}, the published file's is {want}"


def _read_checked(folder: Path, kind: str) -> dict[str, bytes] | None:
    """The decompressed files of a copy edgekit found by itself, or None when any is damaged or differs
    from the published data: the cache's bad files are discarded (and downloaded again), Debian's copy
    is skipped, each with a warning."""
    raw, bad = {}, False
    for name in FILES.values():
        path = folder / name
        why: str | None
        try:
            raw[name] = _gunzip(path)
        except (OSError, EOFError) as exc:
            why = f"unreadable: {exc}"
        else:
            why = _mismatch(path, raw[name])
        if why is None:
            continue
        bad = True
        if kind == "cache":
            discard(path, why)
        else:
            log.warning(
                f"{path} does not match the published file ({why}): skipped; "
                "`sudo apt-get install --reinstall dataset-fashion-mnist` restores it"
            )
    return None if bad else raw


def _read_given(folder: Path) -> dict[str, bytes]:
    """The decompressed files of a copy the user named, used as given; a file with the full set's item
    count that differs from the published one is warned about (once), since results on it are not
    comparable with published figures."""
    raw = {}
    for name in FILES.values():
        path = folder / name
        raw[name] = data = _decompressed(path)
        if parse_idx(data, path).shape[0] != PUBLISHED[name].items:
            continue  # a subset or another set in this format: the user's own data, nothing to compare
        why = _mismatch(path, data)
        if why and (str(path), why) not in _warned:
            _warned.add((str(path), why))
            log.warning(
                f"{path} has the size of Fashion-MNIST's {name} but not its content ({why}): used as given; "
                f"if it should be the original, replace it ({LOCAL_COPY})"
            )
    return raw


def download(folder: Path) -> None:
    """Fetch the files `folder` lacks over https; each is checked against its published SHA-256 before it
    is renamed into place, so a partial or altered download never lands."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        if (folder / name).is_file():
            continue
        log.info(f"downloading {URL}{name}")
        download_verified(
            URL + name,
            folder / name,
            PUBLISHED[name].gz_sha256,
            f"retry, or use a local copy: {LOCAL_COPY}",
        )


def locate(root: str | Path | None = None, allow_download: bool = True) -> Path:
    return _find(root, allow_download)[0]


def _find(root: str | Path | None, allow_download: bool) -> tuple[Path, dict[str, bytes]]:
    """The folder the data comes from and its decompressed files (read once: checking and parsing share them)."""
    for folder, kind in _sources(root):
        if kind == "given" and root is not None and not has_files(folder):
            missing = [n for n in FILES.values() if not (folder / n).is_file()]
            raise EdgekitError(
                f"data folder {root} lacks Fashion-MNIST files {', '.join(missing)}: put the four *-ubyte.gz files "
                "there"
            )
        if not has_files(folder):
            continue
        raw = _read_given(folder) if kind == "given" else _read_checked(folder, kind)
        if raw is not None:
            return folder, raw
    if allow_download:
        try:
            download(cache_dir())
        except OSError as exc:
            reason = f"download failed ({exc})"
        else:
            raw = _read_checked(cache_dir(), "cache")
            if raw is not None:
                return cache_dir(), raw
            reason = "the downloaded files do not match the published ones"
    else:
        reason = "downloads disabled"
    raise EdgekitError(
        f"Fashion-MNIST not found and {reason}: run `sudo apt-get install dataset-fashion-mnist`, "
        f"or put the four *-ubyte.gz files in $EDGEKIT_DATA/fashion-mnist or {cache_dir()}"
    )


def load(root: str | Path | None = None, allow_download: bool = True) -> Dataset:
    folder, raw = _find(root, allow_download)
    arrays = {key: parse_idx(raw[name], folder / name) for key, name in FILES.items()}

    def split(prefix: str) -> Split:
        images = torch.from_numpy(arrays[f"{prefix}_images"].copy()).unsqueeze(1)
        labels = torch.from_numpy(arrays[f"{prefix}_labels"].astype(np.int64))
        if images.shape[0] != labels.shape[0]:
            raise EdgekitError(
                f"{folder}: {prefix} images and labels differ in count: replace the files with the originals"
            )
        return Split(images, labels)

    return Dataset("fashion_mnist", split("train"), split("val"), list(CLASSES), MEAN, STD, str(folder))
