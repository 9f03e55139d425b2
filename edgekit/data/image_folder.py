"""An image folder: one sub-folder per class, either under `train/` and `val/` or split here (seeded).

Images are decoded with Pillow, converted to RGB, resized to a square `image_size`, and held in
memory as uint8. Unreadable images are skipped with a warning and counted (Dataset.skipped, in the
run's data info), or refused with `strict` (`--strict-data`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from edgekit.data.dataset import Dataset, Split, channel_stats
from edgekit.errors import EdgekitError

log = logging.getLogger(__name__)

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _class_folders(root: Path) -> dict[str, list[Path]]:
    classes = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS)
        classes[folder.name] = files
    if not classes:
        raise EdgekitError(
            f"data folder {root} has no class sub-folders: put images in {root}/<class>/*.jpg (or train/ and val/ with "
            "class folders)"
        )
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise EdgekitError(
            f"class folder {root / empty[0]} has no images ({', '.join(sorted(EXTENSIONS))}): add images or remove the "
            "folder"
        )
    return classes


def _decode(files: list[tuple[Path, int]], image_size: int, strict: bool = False) -> tuple[Split, list[str]]:
    """The decoded split and a warning per unreadable image (printed by `load` once both splits
    decoded, so an error never comes after a screen of warnings)."""
    from PIL import Image, UnidentifiedImageError

    images, labels, warnings = [], [], []
    for path, label in files:
        try:
            with Image.open(path) as im:
                im = im.convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
                images.append(np.asarray(im, dtype=np.uint8).transpose(2, 0, 1))
                labels.append(label)
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            if strict:
                raise EdgekitError(
                    f"image {path} is unreadable ({exc.__class__.__name__}): replace or remove it, or drop "
                    "--strict-data to skip unreadable images"
                ) from None
            warnings.append(f"warning: skipping unreadable image {path} ({exc.__class__.__name__})")
    if not images:
        raise EdgekitError(
            f"none of the {len(files)} images is readable (e.g. {files[0][0] if files else '?'}): replace them with "
            "valid image files"
        )
    return Split(torch.from_numpy(np.stack(images)), torch.tensor(labels, dtype=torch.int64)), warnings


MAX_WARNINGS = 20  # per load; the rest are counted in one more line


def native_size(files: list[tuple[Path, int]], max_size: int) -> int:
    """The square side the images hold without upscaling any of them (the smallest short side among the
    readable ones), capped at `max_size`. Pillow reads only each file's header here."""
    from PIL import Image, UnidentifiedImageError

    sides = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                sides.append(min(im.size))
        except (OSError, UnidentifiedImageError, ValueError):
            continue  # reported when the split is decoded
    return min(min(sides), max_size) if sides else max_size


def load(
    root: str | Path,
    image_size: int | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    strict: bool = False,
    max_size: int = 224,
) -> Dataset:
    """`image_size` None: the images' own size (never upscaled), at most `max_size` (the model's default)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgekitError(
            f"data folder {root} does not exist: give an existing folder with one sub-folder per class, or a built-in "
            "name like fashion_mnist"
        )
    if (root / "train").is_dir() and (root / "val").is_dir():
        train_cls, val_cls = _class_folders(root / "train"), _class_folders(root / "val")
        if list(train_cls) != list(val_cls):
            diff = sorted(set(train_cls) ^ set(val_cls))
            raise EdgekitError(
                f"classes differ between {root}/train and {root}/val ({', '.join(diff)}): use the same class folders "
                "in both"
            )
        classes = list(train_cls)
        train_files = [(p, i) for i, c in enumerate(classes) for p in train_cls[c]]
        val_files = [(p, i) for i, c in enumerate(classes) for p in val_cls[c]]
    else:
        per_class = _class_folders(root)
        classes = list(per_class)
        rng = np.random.default_rng(seed)
        train_files, val_files = [], []
        for i, c in enumerate(classes):
            files = list(per_class[c])
            rng.shuffle(files)
            n_val = max(1, round(len(files) * val_fraction)) if len(files) > 1 else 0
            val_files += [(p, i) for p in files[:n_val]]
            train_files += [(p, i) for p in files[n_val:]]
        if not val_files:
            raise EdgekitError(
                f"data folder {root} has too few images to split off a validation set: add images or give train/ and "
                "val/ folders"
            )
    if image_size is None:
        image_size = native_size(train_files + val_files, max_size)
        log.info("data: %s read at %d px (its images' own size, at most the model's %d px)", root, image_size, max_size)
    train, warn_train = _decode(train_files, image_size, strict)
    val, warn_val = _decode(val_files, image_size, strict)
    warnings = warn_train + warn_val
    for line in warnings[:MAX_WARNINGS]:
        log.warning(line)
    if len(warnings) > MAX_WARNINGS:
        log.warning(f"warning: {len(warnings) - MAX_WARNINGS} more unreadable images skipped")
    mean, std = channel_stats(train.images)
    source = f"{root} (image folder, {image_size}px, {len(warnings)} unreadable skipped)"
    return Dataset(root.name, train, val, classes, mean, std, source, skipped=len(warnings))
