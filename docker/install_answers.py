#!/usr/bin/env python3
"""What the target interpreter says about itself, for docker/install.py (standard library only).

install.py runs `TARGET-PYTHON install_answers.py QUESTION ARGS...`; each answer is one JSON value on
stdout: the versions installed, the project's requirements its markers select, what is missing, where
edgekit was installed from, and the verify line. Versions are compared as pip compares them, with
packaging (the environment's, else pip's vendored copy), and pyproject.toml is read with tomllib (on
Python 3.10, which has none, pip's vendored tomli). A file of its own because it runs in another
interpreter than the installer: nothing here may assume what the installer's Python has."""

from __future__ import annotations

import json
import os
import platform
import sys
from typing import Any

PROG = "install.sh"  # every message starts with the name users run: docker/install.sh


def read_pyproject(src: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: pip, which reads pyproject.toml files too, vendors tomli
        from pip._vendor import tomli as tomllib
    with open(os.path.join(src, "pyproject.toml"), encoding="utf-8") as f:
        return tomllib.loads(f.read())["project"]  # loads(str): what every tomli release that pip vendored takes


def _packaging() -> tuple[Any, Any, Any]:
    """(Requirement, SpecifierSet, canonicalize_name): the environment's packaging, else pip's copy."""
    try:
        from packaging.requirements import Requirement
        from packaging.specifiers import SpecifierSet
        from packaging.utils import canonicalize_name
    except ImportError:
        from pip._vendor.packaging.requirements import Requirement
        from pip._vendor.packaging.specifiers import SpecifierSet
        from pip._vendor.packaging.utils import canonicalize_name
    return Requirement, SpecifierSet, canonicalize_name


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def project_facts(src: str, extras: str) -> dict[str, Any]:
    """This Python against requires-python, the extras there are, edgekit's ranges for torch and
    onnxruntime, and whether edgekit or the extras ask for torchvision."""
    Requirement, SpecifierSet, canonicalize_name = _packaging()
    project = read_pyproject(src)
    requires = SpecifierSet(project.get("requires-python", ""))
    optional = project.get("optional-dependencies", {})
    reqs = [Requirement(r) for r in project["dependencies"]]
    # A requirement may be split by markers (onnxruntime by python_version): this interpreter's applies.
    specs = {canonicalize_name(r.name): str(r.specifier) for r in reqs if not r.marker or r.marker.evaluate()}
    for extra in extras.split(","):
        reqs += [Requirement(r) for r in optional.get(extra, [])]
    return {
        "executable": sys.executable,
        "python": platform.python_version(),
        "requires_python": str(requires),
        "python_ok": requires.contains(platform.python_version(), prereleases=True),
        "extras": sorted(optional),
        "torch": specs.get("torch", ""),
        "onnxruntime": specs.get("onnxruntime", ""),
        "torchvision": any(canonicalize_name(r.name) == "torchvision" for r in reqs),
    }


def edgekit_requirements(src: str, extras: str) -> list[str]:
    project = read_pyproject(src)
    reqs = list(project["dependencies"])
    for extra in filter(None, extras.split(",")):
        reqs += project.get("optional-dependencies", {}).get(extra, [])
    return reqs


def missing_requirements(reqs: list[str], extras: list[str], skip: set[str]) -> list[str]:
    """The requirements (markers evaluated here, with the extras) that this environment does not satisfy,
    except those named in skip. Prereleases count: NVIDIA's 2.5.0a0+nv24.08 satisfies torch>=2.4."""
    Requirement, _, canonicalize_name = _packaging()
    out = []
    for text in reqs:
        req = Requirement(text)
        if canonicalize_name(req.name) in skip:
            continue
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in ["", *extras]):
            continue
        have = _version(req.name)
        if have is None or not req.specifier.contains(have, prereleases=True):
            extra = "[" + ",".join(sorted(req.extras)) + "]" if req.extras else ""
            out.append(f"{req.name}{extra}{req.specifier}")
    return out


def installed_from(src: str) -> str:
    """editable or copy when the installed edgekit is SRC's (that directory, that version), else ""."""
    from importlib import metadata

    project = read_pyproject(src)
    try:
        dist = metadata.distribution(project["name"])
    except metadata.PackageNotFoundError:
        return ""
    info = json.loads(dist.read_text("direct_url.json") or "{}")
    url = info.get("url", "")
    if not url.startswith("file://") or os.path.realpath(url[7:]) != os.path.realpath(src):
        return ""
    if dist.version != project["version"]:
        return ""
    return "editable" if info.get("dir_info", {}).get("editable") else "copy"


def verify_here(src: str, require_gpu: bool) -> tuple[str, list[str], list[str]]:
    """(a line of versions, problems, warnings) about this interpreter's edgekit, torch, onnxruntime and
    tensorrt. Imports only: nothing here touches a GPU, so it runs in `docker build`."""
    from importlib import metadata

    Requirement, _, canonicalize_name = _packaging()
    problems, notes, parts, mods = [], [], [], {}
    for name in ("edgekit", "torch", "onnxruntime"):
        try:
            mods[name] = __import__(name)
        except Exception as exc:
            first = (str(exc).strip().splitlines() or ["not installed"])[0][:160]
            problems.append(f"cannot import {name} ({exc.__class__.__name__}: {first})")
    if _version("onnxruntime") and _version("onnxruntime-gpu"):
        problems.append(
            "both onnxruntime and onnxruntime-gpu are installed (one module, two builds): "
            "pip uninstall -y onnxruntime onnxruntime-gpu, then run this script again"
        )
    try:
        import tensorrt

        trt = getattr(tensorrt, "__version__", None) or "placeholder package"
    except Exception as exc:
        trt = None
        if require_gpu:
            missing = "the base image's TensorRT Python bindings are missing"
            problems.append(f"cannot import tensorrt ({exc.__class__.__name__}): {missing}")
    if "edgekit" in mods:
        parts.append(f"edgekit {getattr(mods['edgekit'], '__version__', '?')}")
    if "torch" in mods:
        torch = mods["torch"]
        cuda = torch.version.cuda
        parts.append(f"torch {torch.__version__} ({'CUDA ' + cuda if cuda else 'CPU build'})")
        if require_gpu and not cuda:
            cpu = f"torch {torch.__version__} is a CPU build"
            problems.append(f"{cpu}: uninstall it and install a CUDA build (--torch)")
    if "onnxruntime" in mods:
        ort = mods["onnxruntime"]
        providers = [p for p in ort.get_available_providers() if p != "CPUExecutionProvider"]
        parts.append(f"onnxruntime {ort.__version__} ({', '.join(providers) or 'CPU only'})")
        if require_gpu and not {"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(providers):
            problems.append(f"onnxruntime {ort.__version__} has no CUDA or TensorRT provider: install onnxruntime-gpu")
    parts.append(f"tensorrt {trt}" if trt else "tensorrt not importable")
    # Installed with --no-deps, so pip never compared them with edgekit's ranges: do it here.
    try:
        edgekit_reqs = metadata.requires(read_pyproject(src)["name"]) or []
    except metadata.PackageNotFoundError:
        edgekit_reqs = []
    for text in edgekit_reqs:
        req = Requirement(text)
        applies = not req.marker or req.marker.evaluate({"extra": ""})
        if not applies or canonicalize_name(req.name) not in ("torch", "onnxruntime"):
            continue
        have = _version(req.name) or (_version("onnxruntime-gpu") if req.name == "onnxruntime" else None)
        if have and not req.specifier.contains(have, prereleases=True):
            notes.append(
                f"{req.name} {have} is outside edgekit's range {req.specifier}: "
                "edgekit may fail where it relies on newer features"
            )
    return " | ".join(parts), problems, notes


def answer(argv: list[str]) -> int:
    # The working directory (a source tree, maybe with a stale edgekit.egg-info) must not answer for
    # the installed package.
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()]
    question, args = argv[0], argv[1:]
    result: Any
    if question == "versions":  # versions NAME...
        result = {name: _version(name) or "" for name in args}
    elif question == "project":  # project SRC EXTRAS
        result = project_facts(*args)
    elif question == "missing":  # missing SRC EXTRAS SKIP: edgekit's requirements, with the extras
        src, extras, skip = args
        result = missing_requirements(edgekit_requirements(src, extras), extras.split(","), set(skip.split(",")))
    elif question == "dist-missing":  # dist-missing NAME SKIP: the requirements of an installed distribution
        from importlib import metadata

        name, skip = args
        result = missing_requirements(metadata.requires(name) or [], [], set(skip.split(",")))
    elif question == "installed-from":  # installed-from SRC
        result = installed_from(*args)
    elif question == "verify":  # verify SRC REQUIRE_GPU: the line; the problems on stderr, and exit 1
        result, problems, notes = verify_here(args[0], args[1] == "1")
        for note in notes:
            print(f"{PROG}: warning: {note}", file=sys.stderr)
        for problem in problems:
            print(f"{PROG}: error: verify: {problem}", file=sys.stderr)
        if problems:
            return 1
    else:
        raise ValueError(f"unknown question {question!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(answer(sys.argv[1:]))
