from __future__ import annotations

from pathlib import Path

import pytest

SLICE = Path(__file__).parent / "data" / "fashion-mnist"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's baseline cache; never download."""
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def fmnist_slice():
    from edgekit.data import DataConfig, load_data

    return load_data(DataConfig(root=str(SLICE)))
