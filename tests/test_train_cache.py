"""The baseline cache key: settings that change the weights change the key; where training runs does
not, on the CPU (CPU training is always fp32), so a baseline cached before device/amp existed is reused."""

from edgekit.recipe import Recipe
from edgekit.stages import train
from edgekit.stages.context import Context


def test_cache_key_ignores_device_and_amp_on_cpu(fmnist_slice, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    ctx = Context(Recipe(), fmnist_slice, tmp_path)
    base = train.cache_key(ctx, train.Config())
    assert train.cache_key(ctx, train.Config(device="cpu", amp="off")) == base
    assert train.cache_key(ctx, train.Config(device="auto", amp="bf16")) == base
    assert train.cache_key(ctx, train.Config(lr=0.001)) != base
    assert train.cache_key(ctx, train.Config(epochs=4)) != base


def test_cache_key_separates_gpu_precisions(fmnist_slice, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.is_bf16_supported", lambda *a, **k: True)
    ctx = Context(Recipe(), fmnist_slice, tmp_path)
    keys = {train.cache_key(ctx, train.Config(device="cuda", amp=amp)) for amp in ("off", "bf16", "fp16")}
    assert len(keys) == 3
    assert train.cache_key(ctx, train.Config(device="cpu")) not in keys


def test_cache_key_follows_the_training_code(fmnist_slice, tmp_path, monkeypatch):
    """A change to the code that trains (not only to the settings) trains a new baseline: the reported case
    was a baseline cached by older code (90.58%) reused where the current code trains 90.89%."""
    import importlib
    import sys

    from torch import nn

    monkeypatch.syspath_prepend(str(tmp_path))
    code = tmp_path / "ek_fake_training.py"
    code.write_text("AUGMENT = 'flip'\n")
    monkeypatch.setattr(train, "TRAINING_CODE", (*train.TRAINING_CODE, "ek_fake_training"))
    ctx = Context(Recipe(), fmnist_slice, tmp_path)
    before = train.cache_key(ctx, train.Config())
    assert train.cache_key(ctx, train.Config()) == before  # the same code: the same key
    code.write_text("AUGMENT = 'flip and crop'\n")
    assert train.cache_key(ctx, train.Config()) != before
    sys.modules.pop("ek_fake_training", None)
    importlib.invalidate_caches()
    # the model's own module counts too, and one made at run time (no importable module) does not fail
    Model = type("Model", (nn.Module,), {"__module__": "made_in_a_notebook"})
    assert train.cache_key(ctx, train.Config(), Model()) != train.cache_key(ctx, train.Config())
