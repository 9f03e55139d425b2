from __future__ import annotations

from pathlib import Path

import pytest

SLICE = Path(__file__).parent / "data" / "fashion-mnist"


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Never touch the user's baseline cache (session scope: module fixtures run before function ones)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture
def fmnist_slice():
    from edgekit.data import DataConfig, load_data

    return load_data(DataConfig(root=str(SLICE)))
