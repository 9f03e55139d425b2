"""The machine's multiply-accumulate limit, measured: the best rate ONNX Runtime's CPU kernels reach on a
large matrix product (MatMul; MatMulInteger u8 x s8, the kernel QGemm uses) and on a dense 3x3
convolution (NCHWc Conv; QLinearConv), in fp32 and int8, with the thread count the validate rows run
with. A model's achieved GMAC/s over this peak
says how much of the machine it uses: depthwise convolutions and float islands show up as a low share,
where MACs alone would promise speed (edgekit always measures).

These are the best cases these kernels have; not the CPU's datasheet peak (which needs every port busy
every cycle), but the one a model's convolutions can approach here. A row above 100% ran fewer
multiplies than its MAC count says (a runtime's Winograd or other fast convolution: OpenVINO and PyTorch
reached 107-129% on ResNet18's 3x3 convolutions at batch 32)."""

from __future__ import annotations

import functools
import time

import numpy as np

# The IR version that goes with opset 17. onnx's make_model stamps its own newest IR (14 in onnx 1.23),
# which ONNX Runtime before 1.24 (the releases with Python 3.10 wheels) refuses to load.
IR_VERSION = 8

# M x K times K x N: 256 x 1024 x 1024 = 268M MACs a run, long enough (tens of ms) to time, and a shape
# whose panels stay in L2 the way a convolution's im2col tiles do.
M, K, N = 256, 1024, 1024
# A dense 3x3 convolution, batch x channels x side: ONNX Runtime's direct NCHWc fp32 convolution beat its
# own GEMM by 15% on an AVX-512 machine (56 vs 48 GMAC/s, one thread), so the peak is the better of the two.
CONV_BATCH, CONV_CHANNELS, CONV_SIDE = 8, 256, 14
PEAK_HOW = (
    "ONNX Runtime's best of a 256x1024x1024 GEMM and a dense 3x3 convolution (256 channels, 14x14, batch 8), fp32 "
    "and u8 x s8, best run, validate's threads"
)


def _gemm(int8: bool):
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
    feed = rng.integers(0, 256, (M, K), dtype=np.uint8) if int8 else rng.standard_normal((M, K)).astype(np.float32)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION), feed, M * K * N


def _conv(int8: bool):
    """A 3x3 convolution; the int8 one in Q/DQ form (what QLinearConv runs after ONNX Runtime's fusion)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    c, side, n = CONV_CHANNELS, CONV_SIDE, CONV_BATCH
    shape = [n, c, side, side]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    pads = [1, 1, 1, 1]
    if int8:
        inits = [
            numpy_helper.from_array(rng.integers(-127, 128, (c, c, 3, 3), dtype=np.int8), "wq"),
            numpy_helper.from_array(np.full(c, 0.01, np.float32), "ws"),
            numpy_helper.from_array(np.zeros(c, np.int8), "wz"),
            numpy_helper.from_array(np.array(0.05, np.float32), "s"),
            numpy_helper.from_array(np.array(128, np.uint8), "z"),
        ]
        nodes = [
            helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
            helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xd"]),
            helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
            helper.make_node("Conv", ["xd", "wd"], ["c"], pads=pads),
            helper.make_node("QuantizeLinear", ["c", "s", "z"], ["cq"]),
            helper.make_node("DequantizeLinear", ["cq", "s", "z"], ["y"]),
        ]
    else:
        inits = [numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32), "w")]
        nodes = [helper.make_node("Conv", ["x", "w"], ["y"], pads=pads)]
    graph = helper.make_graph(nodes, "peak", [x], [y], initializer=inits)
    feed = rng.standard_normal(shape).astype(np.float32)
    return (
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION),
        feed,
        n * c * c * 9 * side * side,
    )


def _rate(kernel, int8: bool, threads: int, seconds: float) -> float:
    from edgekit.backends.ort import load_session

    model, x, macs = kernel(int8)
    session = load_session(model, threads)
    for _ in range(3):  # warm-up: first-touch of the packed weights and the thread pool
        session.run(None, {"x": x})
    best = float("inf")
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        session.run(None, {"x": x})
        best = min(best, time.perf_counter() - t0)
    return macs / best / 1e9


@functools.cache
def mac_peak(threads: int, seconds: float = 0.5) -> dict[str, float]:
    """{"fp32": GMAC/s, "int8": GMAC/s}: the fastest of the runs in `seconds` each (the best run is the
    limit; slower ones met interference) of the better kernel, for `threads` intra-op threads. Measured
    once per process."""
    return {
        key: round(max(_rate(kernel, int8, threads, seconds) for kernel in (_gemm, _conv)), 1)
        for key, int8 in (("fp32", False), ("int8", True))
    }


def achieved(macs: int, images_per_s: float) -> float:
    """GMAC/s a model reached: its MACs per image times the images per second it was measured at."""
    return macs * images_per_s / 1e9
