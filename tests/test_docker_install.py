"""docker/install.py's decisions, in-process, case by case: where torch, onnxruntime and torchvision come
from on Jetson and x86, the constraints file, and options against the environment against the defaults.
tests/test_docker.py runs the script itself (lint, this environment, dry runs, bad usage)."""

from __future__ import annotations

import contextlib
import shlex
import sys
import tempfile
from pathlib import Path

import pytest

from docker_support import JETSON_INDEX, PROJECT, ROOT, answers_py, install_py


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
