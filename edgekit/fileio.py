"""Atomic writes (temporary file in the same folder, fsync, rename) and hashing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgekit.errors import EdgekitError


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`, on error delete it.
    A full disk (ENOSPC, EDQUOT) becomes a one-line EdgekitError; nothing half-written is left."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the partial temporary file goes in `finally`
            raise EdgekitError(
                f"no space left on the device while writing {target.name} in {target.parent} "
                f"({exc.strerror or 'disk full'}): free disk space or write the run elsewhere with --output"
            ) from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode())


def atomic_write_json(target: str | Path, obj) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_under(root: str | Path, path: str) -> str | None:
    """The text of absolute `path` under filesystem `root` ("/" normally; a fake tree in tests), or None
    when it cannot be read."""
    try:
        return (Path(root) / path.lstrip("/")).read_text(errors="replace")
    except OSError:
        return None


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def size_mb(path: str | Path) -> float:
    return os.path.getsize(path) / 1e6
