"""ONNX Runtime through one runner for every execution provider: CPU, CUDA and TensorRT (the latter two
only where the installed onnxruntime build has them, e.g. onnxruntime-gpu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

# provider choice -> (ONNX Runtime provider name, backend name in reports)
PROVIDERS = {
    "cpu": ("CPUExecutionProvider", "onnxruntime"),
    "cuda": ("CUDAExecutionProvider", "onnxruntime-cuda"),
    "tensorrt": ("TensorrtExecutionProvider", "onnxruntime-trt"),
}


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def provider_list(choice: str) -> list[str]:
    """The providers to ask for, best first with CPU as the fallback for unsupported nodes; an error
    (not a silent CPU run) when the asked-for provider is not in this onnxruntime build."""
    if choice not in PROVIDERS:
        raise EdgekitError(f"unknown ONNX Runtime provider {choice!r}: use one of {', '.join(PROVIDERS)}")
    name = PROVIDERS[choice][0]
    have = available_providers()
    if name not in have:
        raise EdgekitError(
            f"ONNX Runtime here has no {name} (it has {', '.join(have)}): install onnxruntime-gpu for cuda/tensorrt, "
            "or use the cpu provider"
        )
    chain = [name]
    if choice == "tensorrt" and "CUDAExecutionProvider" in have:
        chain.append("CUDAExecutionProvider")
    return chain + (["CPUExecutionProvider"] if name != "CPUExecutionProvider" else [])


def load_session(
    model,
    threads: int,
    provider: str = "cpu",
    optimize: bool = True,
    optimized_path: str | Path | None = None,
    profile_prefix: str | Path | None = None,
):
    """The one place edgekit opens ONNX Runtime sessions. `model`: a path, or an in-memory ModelProto
    (sensitivity analysis tries many graph edits without writing them). `threads` 0 = all usable cores.
    optimize=False runs the graph as written (Q/DQ simulated in float, the ONNX semantics), without
    ORT's graph rewrites. `optimized_path`: also save the graph ORT runs after its rewrites there.
    `profile_prefix`: turn ORT's profiler on, writing its JSON trace under that prefix (edgekit profile)."""
    import onnxruntime as ort

    from edgekit.envinfo import usable_cores

    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = threads or usable_cores()
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # also silences ORT's warning that a saved NCHWc graph is machine-specific
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    if profile_prefix is not None:
        opts.enable_profiling = True
        opts.profile_file_prefix = str(profile_prefix)
    providers = provider_list(provider)
    source = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    try:
        return ort.InferenceSession(source, opts, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for bad files
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        where = model if isinstance(model, (str, Path)) else "the in-memory model"
        raise EdgekitError(
            f"{where} is not a loadable ONNX model ({first}): give a valid .onnx file, e.g. one from an edgekit run "
            "folder"
        ) from None


class OrtRunner:
    def __init__(self, path: str | Path, threads: int, provider: str = "cpu"):
        if not Path(path).is_file():
            raise EdgekitError(f"ONNX file {path} does not exist: check the path")
        self.path = Path(path)
        self.threads = threads
        self.session = load_session(path, threads, provider)
        self.backend = PROVIDERS[provider][1]
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.input_shape = inp.shape  # e.g. ["batch", 1, 28, 28]

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]

    def kernels(self) -> dict[str, int]:
        """What ONNX Runtime runs after its graph rewrites (the optimized graph it would save): the
        convolutions and matrix products as integer kernels (QLinearConv, QGemm, ...) or in float, and the
        Quantize/DequantizeLinear nodes left, each a float island's edge. The int8 file's proof that its
        weights run as int8, not dequantized back to float."""
        return kernel_counts(self.path, self.threads)

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)


INTEGER_KERNELS = {"QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QGemm"}
FLOAT_KERNELS = {"Conv", "FusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}


def kernel_counts(path: str | Path, threads: int = 1) -> dict[str, int]:
    """Integer and float convolution/matrix kernels, and Q/DQ nodes left, in ONNX Runtime's optimized
    graph of `path` on this machine's CPU provider (see OrtRunner.kernels)."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        load_session(path, threads or 1, optimized_path=optimized)
        ops = [node.op_type for node in onnx.load(optimized).graph.node]
    return {
        "int8": sum(op in INTEGER_KERNELS for op in ops),
        "float": sum(op in FLOAT_KERNELS for op in ops),
        "quantize_dequantize": sum(op in ("QuantizeLinear", "DequantizeLinear") for op in ops),
    }
