"""Atomic writes (temporary file in the same folder, fsync, rename) and hashing."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgekit.distributed import check_writer
from edgekit.errors import EdgekitError


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it over `target`, on error delete it.
    A full disk (ENOSPC, EDQUOT) becomes a one-line EdgekitError; nothing half-written is left."""
    target = Path(target)
    with atomic_named(target, lambda _tmp: target.name) as tmp:
        yield tmp


@contextmanager
def atomic_named(target: str | Path, name_of: Callable[[Path], str]) -> Iterator[Path]:
    """atomic_path whose final name, in `target`'s folder, is `name_of(finished temporary file)`: a cache
    entry named by the hash of its bytes is renamed into place under that name in one step."""
    target = Path(target)
    check_writer(target)  # a distributed run's other ranks never write
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp_path = _new_temp(target)
        try:
            yield tmp_path
            with open(tmp_path, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp_path, target.with_name(name_of(tmp_path)))
        finally:
            tmp_path.unlink(missing_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the partial temporary file is gone already
            raise EdgekitError(
                f"no space left on the device while writing {target.name} in {target.parent} "
                f"({exc.strerror or 'disk full'}): free disk space or write the run elsewhere with --output"
            ) from None
        raise


def _new_temp(target: Path) -> Path:
    """An empty, new file `.<name>.<random>.tmp` beside `target`, created with mode 0666 so the kernel
    applies the umask (and default ACLs): files end up 0644 under umask 022 like any other program's.
    tempfile.mkstemp creates 0600, which made reports written in Docker (as root) unreadable to the
    host user."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.close(os.open(tmp, flags, 0o666))
            return tmp
        except FileExistsError:  # another writer's temporary file: draw another name
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(target.parent))


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode())


def atomic_write_json(target: str | Path, obj) -> None:
    atomic_write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def download_verified(
    url: str, target: str | Path, sha256_hex: str, fix: str, opener: Callable[..., Any] | None = None
) -> None:
    """Download `url` to `target`, streamed into a temporary file beside it and renamed into place only
    when its SHA-256 is `sha256_hex`: a partial or altered download never lands. A mismatch is a one-line
    EdgekitError naming the file, both hashes and `fix`; `opener` (urllib's urlopen) is injectable."""
    import urllib.request

    target = Path(target)
    digest = hashlib.sha256()
    with (opener or urllib.request.urlopen)(url, timeout=30) as resp, atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != sha256_hex:
            raise EdgekitError(
                f"downloaded {target.name} from {url} has SHA-256 {digest.hexdigest()}, expected {sha256_hex}: it "
                f"was cut short or altered on the way and was not kept; {fix}"
            )


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
