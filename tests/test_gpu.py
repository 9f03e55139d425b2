"""PyTorch on CUDA: the GPU runner's accuracy path and trtexec-style timing. Skips without a GPU."""

import numpy as np
import pytest
import torch

import edgekit
from edgekit.accelerator import amp_dtype, resolve_device

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return edgekit.create_model("mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True).eval()


def test_cuda_fp32_and_fp16_match_the_cpu(model):
    from edgekit.backends.torch_cuda import TorchCudaRunner

    x = np.random.default_rng(0).standard_normal((70, 1, 28, 28)).astype(np.float32)
    ref = model(torch.from_numpy(x)).detach().numpy()
    fp32 = TorchCudaRunner(model, (1, 28, 28), "fp32").run(x)
    fp16 = TorchCudaRunner(model, (1, 28, 28), "fp16").run(x)
    assert np.abs(fp32 - ref).max() < 1e-3
    assert (fp16.argmax(1) == ref.argmax(1)).mean() > 0.95


@pytest.mark.parametrize("graph", [False, True])
def test_profile_reports_compute_and_end_to_end(model, graph):
    from edgekit.backends.torch_cuda import TorchCudaRunner

    r = TorchCudaRunner(model, (1, 28, 28), "fp16").profile(8, warmup_s=0.1, min_s=0.3, cuda_graph=graph)
    assert r["cuda_graph"] is graph and r["iterations"] >= 10
    assert 0 < r["gpu_compute_ms"]["p50"] <= r["end_to_end_ms"]["p50"] * 1.05
    assert r["throughput_ips"] > 0 and r["h2d_ms"] >= 0


def test_auto_device_is_cuda_with_mixed_precision():
    assert resolve_device("auto").type == "cuda"
    assert amp_dtype("auto", "cuda") in (torch.bfloat16, torch.float16)
