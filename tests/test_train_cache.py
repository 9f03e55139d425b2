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
