#!/usr/bin/env python3
"""Install edgekit and its Python dependencies without letting pip replace the platform's torch.

Both images run it through docker/install.sh (docker/Dockerfile.jetson, docker/Dockerfile.gpu); it also
works on a Jetson or an x86 machine outside Docker. The order is what keeps torch safe:
  1. torch        kept if already installed; else NVIDIA's Jetson wheel (--no-deps, from the Jetson
                  index or a .whl) on Jetson, or PyPI's torch (a CUDA build on Linux x86_64) elsewhere
  2. onnxruntime  kept if any build is installed; else onnxruntime-gpu (Jetson index on Jetson, PyPI)
  3. the requirements of what steps 1-2 installed with --no-deps, then edgekit's own requirements
     (and --extras), each only if not already satisfied, under a constraints file that pins torch,
     torchvision and onnxruntime to the installed versions: pip fails rather than swap them
  4. edgekit itself with --no-deps (its metadata asks for `onnxruntime`, which would add the CPU
     build next to onnxruntime-gpu)
  5. verify: import edgekit, torch, onnxruntime; `edgekit --version`
Run `docker/install.sh --help` for the options. Exit codes: 0 done, 1 a step failed, 2 bad usage.

Standard library only: it runs before anything is installed. What only the target environment knows (its
installed packages, the requirements its markers select, whether edgekit imports) is asked of the target
interpreter, which runs docker/install_answers.py beside this file (`ask`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

PROG = "install.sh"  # every message starts with the name users run: docker/install.sh
JETSON_INDEX_DEFAULT = "https://pypi.jetson-ai-lab.io/jp6/cu126"
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SRC = os.path.dirname(HERE)
PINNED = ("torch", "torchvision", "onnxruntime", "onnxruntime-gpu")  # what the constraints file pins
ANSWERS = os.path.join(HERE, "install_answers.py")  # what the target interpreter runs to answer

HELP = f"""\
usage: docker/install.sh [options]

Install edgekit (the source tree above this script) and its Python dependencies, keeping the
platform's torch. Prints every command it runs, prefixed with "+ ".

options:
  --python PATH        interpreter to install into (default: python3; env EDGEKIT_PYTHON)
  --venv DIR           create DIR with `python -m venv --system-site-packages` if missing (so apt's
                       TensorRT bindings stay visible) and install into it
  --platform P         auto | jetson | x86 (default auto: jetson on an L4T system; env EDGEKIT_PLATFORM).
                       x86 means "torch and onnxruntime-gpu from PyPI"
  --torch SRC          auto | skip | pypi | INDEX-URL | WHEEL (.whl path or URL) (default auto; env
                       EDGEKIT_TORCH). An installed torch is always kept: auto installs only when torch
                       is missing, from the Jetson index on jetson and from PyPI on x86. pypi is refused
                       on jetson (PyPI has no torch for Jetson's GPU)
  --torch-spec SPEC    version range for torch (default: edgekit's, read from pyproject.toml)
  --jetson-index URL   NVIDIA's Jetson wheel index (default {JETSON_INDEX_DEFAULT};
                       env EDGEKIT_JETSON_INDEX): JetPack 6 / L4T r36, CUDA 12.6, Python 3.10
  --onnxruntime KIND   auto | gpu | cpu | skip (default auto = gpu when none is installed; an
                       installed onnxruntime or onnxruntime-gpu is kept)
  --extras LIST        comma-separated extras of edgekit to install too, e.g. zoo ("" for none)
  --editable           install edgekit in editable mode (pip install -e)
  --deps-only          stop after the dependencies (steps 1-3): needs only pyproject.toml, so an image
                       can cache this layer and rerun the script after copying the code
  --src DIR            edgekit source tree (default: {DEFAULT_SRC})
  --require-gpu-stack  fail the verify step unless torch is a CUDA build, onnxruntime has a CUDA or
                       TensorRT provider and tensorrt imports (the Dockerfiles pass this)
  --dry-run            print the commands without running them
  -h, --help           this help
"""


# ---- messages: one line each; errors on stderr ------------------------------------------------
def say(message: str) -> None:
    print(f"{PROG}: {message}", flush=True)


def die(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def usage_error(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}; see docker/install.sh --help", file=sys.stderr, flush=True)
    sys.exit(2)


# ---- options ----------------------------------------------------------------------------------
@dataclass
class Options:
    python: str = "python3"
    venv: str = ""
    platform: str = "auto"  # resolve_platform() turns auto into jetson or x86
    torch: str = "auto"
    torch_spec: str = ""  # "": edgekit's range, from pyproject.toml
    jetson_index: str = JETSON_INDEX_DEFAULT
    onnxruntime: str = "auto"
    extras: str = ""
    editable: bool = False
    deps_only: bool = False
    src: str = DEFAULT_SRC
    require_gpu_stack: bool = False
    dry_run: bool = False


# The options that take a value, each with the environment variable it falls back on before its default.
VALUED = {
    "--python": "EDGEKIT_PYTHON",
    "--venv": None,
    "--platform": "EDGEKIT_PLATFORM",
    "--torch": "EDGEKIT_TORCH",
    "--torch-spec": "EDGEKIT_TORCH_SPEC",
    "--jetson-index": "EDGEKIT_JETSON_INDEX",
    "--onnxruntime": None,
    "--extras": None,
    "--src": None,
}
FLAGS = ("--editable", "--deps-only", "--require-gpu-stack", "--dry-run")


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are this script's: one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        missing = re.fullmatch(r"argument (--[\w-]+): expected one argument", message)
        usage_error(f"{missing.group(1)} needs a value" if missing else message)


class _Help(argparse.Action):
    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> NoReturn:
        print(HELP, end="")
        sys.exit(0)


def parse_args(argv: list[str], environ: Mapping[str, str] = os.environ) -> Options:
    """An option beats its environment variable (an empty one counts as unset), which beats the default."""
    parser = _Parser(prog="docker/install.sh", add_help=False, allow_abbrev=False)
    for name in VALUED:
        parser.add_argument(name)
    for name in FLAGS:
        parser.add_argument(name, action="store_true")
    parser.add_argument("-h", "--help", nargs=0, action=_Help)
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        usage_error(f"unknown option '{unknown[0]}'")

    opts = Options()
    for name, env in VALUED.items():
        attr = name[2:].replace("-", "_")
        value = getattr(args, attr)
        if value == "" and name != "--extras":  # --extras "" is fine: no extras
            usage_error(f"{name} needs a value")
        if value is None and env:
            value = environ.get(env) or None
        if value is not None:
            setattr(opts, attr, value)
    for name in FLAGS:
        attr = name[2:].replace("-", "_")
        setattr(opts, attr, getattr(args, attr))
    check_options(opts)
    return opts


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "file://"))


def check_options(opts: Options) -> None:
    if opts.platform not in ("auto", "jetson", "x86"):
        usage_error(f"--platform must be auto, jetson or x86 (got '{opts.platform}')")
    if opts.onnxruntime not in ("auto", "gpu", "cpu", "skip"):
        usage_error(f"--onnxruntime must be auto, gpu, cpu or skip (got '{opts.onnxruntime}')")
    if opts.torch not in ("auto", "skip", "pypi") and not is_url(opts.torch):
        if not opts.torch.endswith(".whl"):
            usage_error(f"--torch must be auto, skip, pypi, an index URL or a .whl path or URL (got '{opts.torch}')")
        if not os.path.isfile(opts.torch):
            usage_error(f"--torch {opts.torch}: no such wheel file")
    if not is_url(opts.jetson_index):
        usage_error(f"--jetson-index must be a URL (got '{opts.jetson_index}')")
    if not os.path.isfile(os.path.join(opts.src, "pyproject.toml")):
        usage_error(f"--src {opts.src} has no pyproject.toml: give the edgekit source tree")
    opts.src = os.path.abspath(opts.src)


# ---- platform ---------------------------------------------------------------------------------
def detect_platform(machine: str | None = None, root: str = "/") -> str:
    """jetson on an L4T system (aarch64 with NVIDIA's Tegra release file or libraries), else x86, which
    stands for "torch and onnxruntime-gpu from PyPI" on any other machine too."""
    tegra = os.path.exists(os.path.join(root, "etc/nv_tegra_release")) or os.path.isdir(
        os.path.join(root, "usr/lib/aarch64-linux-gnu/tegra")
    )
    return "jetson" if (machine or platform.machine()) == "aarch64" and tegra else "x86"


def resolve_platform(opts: Options) -> None:
    if opts.platform == "auto":
        opts.platform = detect_platform()
    if opts.platform == "jetson" and opts.torch == "pypi":
        usage_error(
            "--torch pypi on jetson would install a torch without Jetson GPU support: "
            "give NVIDIA's index or wheel, or auto"
        )


# ---- running commands -------------------------------------------------------------------------
_PLAIN = re.compile(r"[A-Za-z0-9_./:=@%+,-]+")


def show(cmd: list[str]) -> None:
    """The command as one line after "+ ", a word quoted only where it needs it."""
    print("+ " + " ".join(a if _PLAIN.fullmatch(a) else f"'{a}'" for a in cmd), flush=True)


def run(cmd: list[str], dry_run: bool) -> int:
    show(cmd)
    if dry_run:
        return 0
    try:
        return subprocess.run(cmd, check=False).returncode
    except OSError as exc:  # the shell's codes: 127 not found, 126 not executable
        return 127 if isinstance(exc, FileNotFoundError) else 126


def step(what: str, hint: str, cmd: list[str], dry_run: bool) -> None:
    """Runs cmd; if it fails, one line that names the step and the fix."""
    rc = run(cmd, dry_run)
    if rc != 0:
        die(f"{what} failed (exit {rc}): {hint}")


@dataclass(frozen=True)
class Step:
    """One pip install of steps 1-2."""

    what: str  # what and hint make its failure message
    hint: str
    args: list[str]  # after `python -m pip install --no-input`
    no_deps: str = ""  # the distribution it installs with --no-deps: step 3 installs its requirements


def ask(python: str, *question: str) -> Any:
    """The target interpreter's answer (JSON on its stdout; its stderr passes through); None if it failed."""
    r = subprocess.run([python, ANSWERS, *question], check=False, stdout=subprocess.PIPE, text=True)
    try:
        return json.loads(r.stdout) if r.returncode == 0 else None
    except ValueError:
        return None


def installed_versions(python: str) -> dict[str, str]:
    """The versions of PINNED installed for python ("" = not installed)."""
    have = ask(python, "versions", *PINNED)
    if have is None:
        die(f"could not list the packages installed for {python}")
    return have


# ---- the interpreter and the project ----------------------------------------------------------
def target_python(opts: Options) -> str:
    """The interpreter to install into: --python's, or the --venv made with it. It must have pip."""
    base = shutil.which(opts.python)
    if not base:
        die(f"no Python at '{opts.python}': install python3 or pass --python PATH")
    python = base
    if opts.venv:
        venv_python = os.path.join(opts.venv, "bin", "python")
        if not os.access(venv_python, os.X_OK):
            step(
                f"creating the virtual environment {opts.venv}",
                "install python3-venv (apt) or pass --python without --venv",
                [base, "-m", "venv", "--system-site-packages", opts.venv],
                opts.dry_run,
            )
        # A dry run does not create the venv: the base interpreter answers for it (system site packages).
        if os.access(venv_python, os.X_OK):
            python = venv_python
    pip = subprocess.run([python, "-m", "pip", "--version"], check=False, capture_output=True)
    if pip.returncode != 0:
        die(f"{python} has no pip: install python3-pip, or use --venv DIR")
    return python


@dataclass(frozen=True)
class Project:
    """What the steps need from pyproject.toml."""

    torch_spec: str  # edgekit's range for torch, as pip writes it: "<2.14,>=2.4"
    onnxruntime_spec: str
    needs_torchvision: bool  # edgekit or one of the --extras asks for torchvision


def check_project(python: str, opts: Options) -> Project:
    """edgekit's ranges; fails unless the target's Python suits edgekit and the --extras exist."""
    facts = ask(python, "project", opts.src, opts.extras)
    if facts is None:
        die(f"could not read {opts.src}/pyproject.toml")
    if not facts["python_ok"]:
        python_is = f"{facts['executable']} is Python {facts['python']}"
        die(f"{python_is}; edgekit needs {facts['requires_python']}: pass --python")
    for extra in filter(None, opts.extras.split(",")):
        if extra not in facts["extras"]:
            usage_error(f"unknown extra '{extra}': edgekit has {', '.join(facts['extras'])}")
    return Project(facts["torch"], facts["onnxruntime"], facts["torchvision"])


# ---- 1-2: torch and onnxruntime ---------------------------------------------------------------
# Each returns a Step, or the line that says why nothing is installed.
def torch_plan(opts: Options, installed: str, spec: str) -> Step | str:
    """An installed torch is always kept: pip must never swap NVIDIA's Jetson build, or a CUDA build
    chosen with --torch, for another."""
    if opts.torch == "skip":
        return f"torch: skipped (--torch skip); installed: {installed or 'none'}"
    if installed:
        return f"torch {installed} is installed: kept (pip uninstall torch first to replace it)"
    source = opts.torch
    if source == "auto":
        source = opts.jetson_index if opts.platform == "jetson" else "pypi"
    if source == "pypi":
        return Step("installing torch from PyPI", "check the network, or pass --torch INDEX-URL", [f"torch{spec}"])
    # Not from PyPI: without its dependencies, which step 3 installs under the constraints.
    if source.endswith(".whl"):
        hint = "check the path or URL of the wheel (cp310, aarch64 for JetPack 6)"
        return Step(f"installing the torch wheel {source}", hint, ["--no-deps", source], "torch")
    hint = f"check the index URL (for JetPack 6: {JETSON_INDEX_DEFAULT}), or give a .whl"
    return Step(f"installing torch from {source}", hint, ["--no-deps", "--index-url", source, f"torch{spec}"], "torch")


def torchvision_plan(opts: Options, project: Project, installed: str) -> Step | None:
    """torchvision (the zoo extra) must match torch's build: on Jetson it comes from the same index.
    Elsewhere it is an ordinary requirement of step 3."""
    if opts.platform != "jetson" or not project.needs_torchvision or installed:
        return None
    args = ["--no-deps", "--index-url", opts.jetson_index, "torchvision"]
    return Step(f"installing torchvision from {opts.jetson_index}", "check --jetson-index", args, "torchvision")


def onnxruntime_plan(opts: Options, have: dict[str, str], spec: str) -> Step | str:
    """An installed build, either, is kept: both provide the module `onnxruntime`, so a second one breaks it."""
    kept = next((f"{name} {have[name]}" for name in ("onnxruntime-gpu", "onnxruntime") if have.get(name)), "")
    if opts.onnxruntime == "skip":
        return f"onnxruntime: skipped (--onnxruntime skip); installed: {kept or 'none'}"
    if kept:
        return f"{kept} is installed: kept (pip uninstall it first to replace it)"
    if opts.onnxruntime == "cpu":
        return Step("installing onnxruntime", "check the network", [f"onnxruntime{spec}"])
    if opts.platform == "jetson":
        args = ["--no-deps", "--index-url", opts.jetson_index, "onnxruntime-gpu"]
        hint = "check --jetson-index, or pass --onnxruntime cpu"
        return Step(f"installing onnxruntime-gpu from {opts.jetson_index}", hint, args, "onnxruntime-gpu")
    hint = "check the network, or pass --onnxruntime cpu"
    return Step("installing onnxruntime-gpu from PyPI", hint, [f"onnxruntime-gpu{spec}"])


def carry_out(plan: Step | str | None, pip: list[str], dry_run: bool) -> list[str]:
    """Says or runs the plan; returns what it installed with --no-deps."""
    if isinstance(plan, str):
        say(plan)
    elif plan is not None:
        step(plan.what, plan.hint, pip + plan.args, dry_run)
        return [plan.no_deps] if plan.no_deps else []
    return []


# ---- 3: requirements, with torch and onnxruntime pinned ---------------------------------------
def constraints_text(have: dict[str, str]) -> str:
    """A `name==version` line for each installed PINNED package: pip fails rather than replace it."""
    return "".join(f"{name}=={have[name]}\n" for name in PINNED if have.get(name))


def left_out(platform_name: str) -> str:
    """Never left to pip: torch and onnxruntime (steps 1-2), and torchvision on Jetson (Jetson index)."""
    return "torch,onnxruntime,onnxruntime-gpu" + (",torchvision" if platform_name == "jetson" else "")


def install_missing(what: str, python: str, question: list[str], pip: list[str], dry_run: bool) -> None:
    """pip-installs what the target says is not satisfied, if anything."""
    missing = ask(python, *question)
    if missing is None:
        die(f"could not read the requirements of {what}")
    if not missing:
        say(f"{what}: all satisfied")
        return
    hint = "pip's message above names the conflict; torch and onnxruntime stay pinned"
    step(f"installing {what}", hint, pip + missing, dry_run)


def install_requirements(opts: Options, python: str, pip: list[str], no_deps: list[str], have: dict[str, str]) -> None:
    """Step 3. The constraints file lives only as long as the pip runs that read it."""
    if not opts.dry_run:
        have = installed_versions(python)  # what steps 1-2 installed, at its version
    fd, constraints = tempfile.mkstemp(prefix="edgekit-constraints.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(constraints_text(have))
        if opts.dry_run:
            listed = constraints_text(have).replace("\n", " ")
            say(f"constraints: {listed}(and what steps 1-2 install, at its version)")
        pip = pip + ["--constraint", constraints]
        skip = left_out(opts.platform)
        for dist in no_deps:
            if opts.dry_run and not have.get(dist):  # not installed, so there is no metadata to read
                show(pip + [f"<requirements of {dist}, read from its metadata>"])
            else:
                install_missing(f"the requirements of {dist}", python, ["dist-missing", dist, skip], pip, opts.dry_run)
        what = "edgekit's requirements" + (f" (with {opts.extras})" if opts.extras else "")
        install_missing(what, python, ["missing", opts.src, opts.extras, skip], pip, opts.dry_run)
    finally:
        os.unlink(constraints)


# ---- 4-5: edgekit, and verify -----------------------------------------------------------------
def install_edgekit(opts: Options, python: str, pip: list[str]) -> None:
    """--no-deps: edgekit's metadata asks for `onnxruntime`, which pip would add as a second, CPU-only
    build next to onnxruntime-gpu."""
    if opts.editable and ask(python, "installed-from", opts.src) == "editable":
        say(f"edgekit is installed in editable mode from {opts.src}: kept")
    elif opts.editable:
        cmd = pip + ["--no-deps", "--editable", opts.src]
        step("installing edgekit (editable)", "pip's message above says why", cmd, opts.dry_run)
    else:
        step("installing edgekit", "pip's message above says why", pip + ["--no-deps", opts.src], opts.dry_run)


def verify(opts: Options, python: str) -> None:
    """The target imports edgekit, torch and onnxruntime (see verify_here), and `edgekit --version` runs."""
    edgekit = os.path.join(os.path.dirname(python), "edgekit")
    if not os.access(edgekit, os.X_OK):
        edgekit = shutil.which("edgekit") or "edgekit"
    show([python, "-c", "import edgekit, torch, onnxruntime"])
    show([edgekit, "--version"])
    if opts.dry_run:
        say("dry run: nothing installed")
        return
    line = ask(python, "verify", opts.src, "1" if opts.require_gpu_stack else "0")
    if line is None:
        die("verify failed: see the lines above")
    try:
        r = subprocess.run(
            [edgekit, "--version"], check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        rc, version = r.returncode, r.stdout.rstrip("\n")
    except OSError as exc:
        rc, version = 127, str(exc)
    if rc != 0:
        die(f"'{edgekit} --version' failed: {version}")
    say(f"verified: {line}; `edgekit --version` says '{version}'")


# ---- the install ------------------------------------------------------------------------------
def install(opts: Options) -> None:
    python = target_python(opts)
    project = check_project(python, opts)
    have = installed_versions(python)
    pip = [python, "-m", "pip", "install", "--no-input"]
    say(f"platform {opts.platform}, python {python}, source {opts.src}" + (", dry run" if opts.dry_run else ""))

    no_deps = carry_out(torch_plan(opts, have["torch"], opts.torch_spec or project.torch_spec), pip, opts.dry_run)
    no_deps += carry_out(torchvision_plan(opts, project, have["torchvision"]), pip, opts.dry_run)
    no_deps += carry_out(onnxruntime_plan(opts, have, project.onnxruntime_spec), pip, opts.dry_run)
    install_requirements(opts, python, pip, no_deps, have)
    if opts.deps_only:
        say("dependencies done (--deps-only): edgekit itself not installed, nothing verified")
        return
    install_edgekit(opts, python, pip)
    verify(opts, python)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parse_args(argv)
    resolve_platform(opts)
    install(opts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
