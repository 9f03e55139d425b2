"""What tests/test_docker.py and tests/test_docker_install.py share: the paths of docker/, the project
metadata, and docker/install.py and install_answers.py loaded as modules (once, under fixed names)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    from pip._vendor import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
SCRIPT = DOCKER / "install.sh"  # the entry point: finds the Python, runs install.py with it
INSTALL_PY = DOCKER / "install.py"
ANSWERS_PY = DOCKER / "install_answers.py"  # what the target interpreter runs for install.py
JETSON_INDEX = "https://pypi.jetson-ai-lab.io/jp6/cu126"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _load(name: str, path: Path):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


install_py = _load("docker_install", INSTALL_PY)
answers_py = _load("docker_install_answers", ANSWERS_PY)
