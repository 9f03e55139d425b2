"""The machine's multiply-accumulate limit, measured: the rate ONNX Runtime's CPU GEMM kernels reach on a
large matrix product, in fp32 (MatMul) and int8 (MatMulInteger, u8 x s8: the kernel QLinearConv and
QGemm use), with the thread count the validate rows run with. A model's achieved GMAC/s over this peak
says how much of the machine it uses: depthwise convolutions and float islands show up as a low share,
where MACs alone would promise speed (edgekit always measures).

A GEMM that fits no cache level badly is the best case these kernels have; it is not the CPU's
datasheet peak (which needs every port busy every cycle), but the one a convolution lowered to GEMM can
approach here."""

from __future__ import annotations

import functools
import time

import numpy as np

# M x K times K x N: 256 x 1024 x 1024 = 268M MACs a run, long enough (tens of ms) to time, and a shape
# whose panels stay in L2 the way a convolution's im2col tiles do.
M, K, N = 256, 1024, 1024


def _graph(int8: bool):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        w = rng.integers(-127, 128, (K, N), dtype=np.int8)
        x = helper.make_tensor_value_info("x", TensorProto.UINT8, [M, K])
        y = helper.make_tensor_value_info("y", TensorProto.INT32, [M, N])
        node = helper.make_node("MatMulInteger", ["x", "w"], ["y"])
    else:
        w = rng.standard_normal((K, N)).astype(np.float32)
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, K])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, N])
        node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = helper.make_graph([node], "peak", [x], [y], initializer=[numpy_helper.from_array(w, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _rate(int8: bool, threads: int, seconds: float) -> float:
    from edgekit.backends.ort import load_session

    session = load_session(_graph(int8), threads)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (M, K), dtype=np.uint8) if int8 else rng.standard_normal((M, K)).astype(np.float32)
    for _ in range(3):  # warm-up: first-touch of the packed weights and the thread pool
        session.run(None, {"x": x})
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        session.run(None, {"x": x})
        best = min(best, time.perf_counter() - t0)
    return M * K * N / best / 1e9


@functools.cache
def gemm_peak(threads: int, seconds: float = 0.5) -> dict[str, float]:
    """{"fp32": GMAC/s, "int8": GMAC/s}: the fastest of the runs in `seconds` each (the best run is the
    limit; slower ones met interference), for `threads` intra-op threads. Measured once per process."""
    return {
        "fp32": round(_rate(False, threads, seconds), 1),
        "int8": round(_rate(True, threads, seconds), 1),
    }


def achieved(macs: int, images_per_s: float) -> float:
    """GMAC/s a model reached: its MACs per image times the images per second it was measured at."""
    return macs * images_per_s / 1e9
