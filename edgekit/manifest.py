"""manifest.json in every run folder: after each finished stage, its record and every file the run has
made so far with its SHA-256, plus the run's JSON-safe info. It is what `--resume` trusts: a stage is
finished when its record is in the manifest and the hashes of the files still match."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from edgekit.artifact import ROLES, Artifact, ModelEntry, Role, RunInfo, StageRecord
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_json, sha256

NAME = "manifest.json"
FORMAT = "edgekit-run/2"  # /2: entries carry their role and source, and info is a RunInfo
READABLE = (FORMAT, "edgekit-run/1")
# The file's format version, first in the file; files from before it have none and read as version 0.
# Bump it when a change would make an older edgekit misread a manifest, so that edgekit refuses instead.
SCHEMA_VERSION = 1


def check_schema_version(doc: dict, path: Path, supported: int) -> int:
    """`doc`'s schema_version (0 when absent: written before edgekit recorded one). A newer one than
    `supported` is refused: its fields may mean what this edgekit cannot know."""
    version = doc.get("schema_version", 0)
    if type(version) is not int or version < 0:
        raise EdgekitError(
            f"{path} has an invalid schema_version {version!r}: expected a whole number; the file is damaged"
        )
    if version > supported:
        raise EdgekitError(
            f"{path} has schema_version {version}, newer than this edgekit reads ({supported}): upgrade edgekit "
            "(pip install -U edgekit) to read it"
        )
    return version


def write(art: Artifact, recipe_sha256: str) -> None:
    entries = []
    for e in art.entries.values():
        if not e.path.is_file():
            continue
        entries.append(
            {
                "role": e.role.value,
                "source": e.source.value if e.source else None,
                "name": e.name,
                "format": e.format,
                "precision": e.precision,
                "params": e.params,
                "macs": e.macs,
                "file": e.path.name,
                "sha256": sha256(e.path),
            }
        )
    atomic_write_json(
        art.run_dir / NAME,
        {
            "schema_version": SCHEMA_VERSION,
            "format": FORMAT,
            "recipe_sha256": recipe_sha256,
            "stages": [dataclasses.asdict(r) for r in art.history],
            "entries": entries,
            "info": art.info.to_dict(),
        },
    )


def read(run_dir: Path) -> dict:
    path = run_dir / NAME
    if not run_dir.is_dir():
        raise EdgekitError(
            f"run folder {run_dir} does not exist: give a folder under artifacts/ made by edgekit compress or run"
        )
    if not path.is_file():
        raise EdgekitError(
            f"{run_dir} has no {NAME}, so no stage is known to have finished: give a run folder made by this edgekit "
            "version, or start a new run"
        )
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise EdgekitError(f"{path} is not valid JSON (damaged?): start a new run") from None
    if not isinstance(manifest, dict):
        raise EdgekitError(f"{path} is not an edgekit run manifest ({FORMAT}): start a new run")
    check_schema_version(manifest, path, SCHEMA_VERSION)  # before the format: a newer file may change it
    if manifest.get("format") not in READABLE:
        raise EdgekitError(f"{path} is not an edgekit run manifest ({FORMAT}): start a new run")
    return manifest


def verified_entries(run_dir: Path, manifest: dict) -> list[dict]:
    """The manifest's entries after checking each file still has the hash recorded when it was made."""
    out = []
    for e in manifest["entries"]:
        path = run_dir / e["file"]
        if Path(e["file"]).name != e["file"]:  # a manifest names files inside the run folder only
            raise EdgekitError(f"{run_dir / NAME} names {e['file']!r}, outside the run folder: start a new run")
        if not path.is_file():
            raise EdgekitError(
                f"{path.name} was made by this run but is gone: resume cannot trust the run; start a new run"
            )
        if sha256(path) != e["sha256"]:
            raise EdgekitError(
                f"{path.name} changed since its stage finished (its SHA-256 differs from the manifest): resume "
                "cannot trust it; start a new run"
            )
        out.append({**e, "path": path})
    return out


def records(manifest: dict) -> list[StageRecord]:
    return [StageRecord(**r) for r in manifest["stages"]]


def run_info(manifest: dict) -> RunInfo:
    return RunInfo.from_dict(manifest["info"])


def _role_of(e: dict) -> Role:
    """The entry's role; an edgekit-run/1 manifest named entries only (file name, or the torch role)."""
    if e.get("role"):
        return Role(e["role"])
    if e["name"] == "finetuned":
        return Role.DISTILLED
    return next(r for r, spec in ROLES.items() if e["name"] in (r.value, spec.file))


def entry(e: dict, module=None) -> ModelEntry:
    source = e.get("source")
    return ModelEntry(
        _role_of(e),
        e["name"],
        e["format"],
        e["precision"],
        e["params"],
        e["macs"],
        e["path"],
        module,
        Role(source) if source else None,
    )
