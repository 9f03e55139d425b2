from __future__ import annotations

from pathlib import Path

import pytest

SLICE = Path(__file__).parent / "data" / "fashion-mnist"
# Recipe values that keep an end-to-end run on the shipped slice to seconds: real data, token timing.
FAST_SETS = {
    "data.root": SLICE,
    "validate.min_seconds": 0.05,
    "validate.min_runs": 5,
    "validate.warmup_s": 0,
    "validate.rounds": 1,
}


def sets(values: dict) -> list[str]:
    """`--set KEY=VALUE` flags for the command line, one pair per recipe value."""
    return [flag for key, value in values.items() for flag in ("--set", f"{key}={value}")]


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Never touch the user's baseline cache (session scope: module fixtures run before function ones)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EDGEKIT_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
        yield


@pytest.fixture
def one_thread():
    """Tiny convs run far faster on one thread than on a contended pool; torch's count is restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fmnist_slice():
    from edgekit.data import DataConfig, load_data

    return load_data(DataConfig(root=str(SLICE)))
