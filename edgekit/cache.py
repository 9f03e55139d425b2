"""How an entry of edgekit's caches (trained baselines, TensorRT timing caches) is written and trusted.

An entry asked for as `folder/<stem><suffix>` is stored as `folder/<stem>.<hash><suffix>`: the hash (the
first 16 hex digits of the SHA-256 of its bytes) is part of the file's own name, so the entry and its
hash are renamed into place together and can never pair wrongly, and the file stays in its plain format
(torch.load and trtexec read it as they would any other). Reading checks the bytes against the name; an
entry that is damaged, truncated, mismatched, or that the loader cannot use is deleted with one warning
and the caller rebuilds it. Two writers of one entry both succeed: each renames a complete file into
place, readers take the newest, and a writer removes only entries older than its own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from edgekit.fileio import atomic_named, sha256

log = logging.getLogger(__name__)

T = TypeVar("T")
DIGITS = 16  # 64 bits: enough to catch damage; the cache is no defence against someone who can write to it


def _pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(path.stem)}\.([0-9a-f]{{{DIGITS}}}){re.escape(path.suffix)}")


def entries(path: Path) -> list[Path]:
    """The stored files of the entry `path`, newest first (a concurrent writer may have added one)."""
    pattern = _pattern(path)
    try:
        found = [p for p in path.parent.iterdir() if pattern.fullmatch(p.name)]
    except OSError:  # no cache folder yet, or one this user cannot read: a miss
        return []
    return sorted(found, key=_age_key, reverse=True)


def _age_key(p: Path) -> tuple[int, str]:
    try:
        return p.stat().st_mtime_ns, p.name
    except OSError:  # removed by a concurrent writer since it was listed
        return 0, p.name


def store(path: Path, write: Callable[[Path], object]) -> Path | None:
    """Store the entry `path`: `write(tmp)` writes its bytes to a temporary file, which is renamed into
    place under its hashed name. Returns the stored file (which a newer writer's may supersede), or None
    when the cache folder is not writable: warned, since a cache speeds runs up and must not fail them.
    A full disk is an EdgekitError, as for every write."""
    names: list[str] = []

    def hashed_name(tmp: Path) -> str:
        names.append(f"{path.stem}.{sha256(tmp)[:DIGITS]}{path.suffix}")
        return names[-1]

    try:
        with atomic_named(path, hashed_name) as tmp:
            write(tmp)
    except OSError as exc:
        log.warning(
            f"cache: could not store {path.name} in {path.parent} ({exc.strerror or exc}): later runs rebuild it; "
            "set EDGEKIT_CACHE to a writable folder"
        )
        return None
    _remove_older(path, entries(path))
    return path.with_name(names[-1])


def _remove_older(path: Path, stored: list[Path]) -> None:
    """Delete what the newest entry supersedes: older hashed files and the unhashed file of earlier
    edgekit versions, which cannot be verified. The newest is never deleted, so of two concurrent
    writers at least one entry survives."""
    if not stored:
        return
    newest = _age_key(stored[0])[0]
    for p in [p for p in stored[1:] if _age_key(p)[0] < newest] + [path]:
        with contextlib.suppress(OSError):  # another user's file in a shared cache: left, it is only space
            p.unlink(missing_ok=True)


def load_verified(path: Path, load: Callable[[bytes], T]) -> tuple[T, Path] | None:
    """(load(bytes), file) for the newest stored file of the entry `path` whose bytes match its hash and
    that `load` accepts; None when there is none. Each file that fails is discarded with one warning.
    `load` gets the verified bytes themselves, so nothing can change between the check and the load."""
    pattern = _pattern(path)
    for file in entries(path):
        try:
            data = file.read_bytes()
        except FileNotFoundError:  # superseded by a concurrent writer since it was listed
            continue
        except OSError as exc:
            discard(file, f"unreadable: {exc.strerror or exc}")
            continue
        recorded = pattern.fullmatch(file.name).group(1)  # type: ignore[union-attr]  # entries() lists only matches
        got = hashlib.sha256(data).hexdigest()[:DIGITS]
        if got != recorded:
            discard(file, f"damaged or partial: its bytes hash to {got}, its name records {recorded}")
            continue
        try:
            return load(data), file
        except Exception as exc:  # intact bytes that do not load (e.g. another version's format): as useless
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
            discard(file, f"cannot be loaded: {type(exc).__name__}{': ' + first if first else ''}")
    return None


def discard(file: Path, why: str) -> None:
    """Delete a bad cache file, saying so once; the caller rebuilds what it held."""
    log.warning(f"cache: discarding {file} ({why}); rebuilding it")
    with contextlib.suppress(OSError):  # a read-only cache: the entry is skipped all the same
        file.unlink(missing_ok=True)
