"""Build a TensorRT engine from an ONNX file with the TensorRT Python API (10.x and 11.x).

Precision comes from the file: int8 from QuantizeLinear/DequantizeLinear nodes (explicit quantization,
the only int8 path TensorRT 11 has), fp16 from an fp16 graph. Networks are strongly typed, except on
TensorRT 10 when `fp16` asks for its FP16 builder flag (weak typing, where a Q/DQ file also needs the
INT8 flag). The batch axis is dynamic with one optimization profile; the timing cache is loaded before
and saved after every build so later builds on the same TensorRT and GPU skip kernel timing.

Written against NVIDIA's documented API; edgekit's CI has no TensorRT, so this file is exercised there
only through a recording fake (tests/test_tensorrt.py)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from edgekit.backends.tensorrt import progress_monitor
from edgekit.backends.tensorrt.options import BuildOptions, network_typing, timing_cache_path
from edgekit.backends.tensorrt.stamp import make_stamp, write_stamp
from edgekit.cache import load_verified, store
from edgekit.errors import EdgekitError
from edgekit.fileio import atomic_write_bytes


def onnx_facts(path: Path) -> dict:
    """Input name and (C, H, W), and whether the file carries Q/DQ nodes, read with onnx (no TensorRT)."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise EdgekitError(
            f"{path} is not a readable ONNX file ({exc.__class__.__name__}): give an .onnx file from an edgekit run"
        ) from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgekitError(
            f"{path} has {len(inputs)} inputs: edgekit builds engines for image classifiers with one (N, C, H, W) input"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    image = tuple(d.dim_value for d in dims[1:])
    if len(dims) != 4 or not all(image):
        raise EdgekitError(
            f"{path}: input {inputs[0].name} is not (batch, C, H, W) with fixed C, H, W: export with a static image "
            "size"
        )
    ops = {n.op_type for n in model.graph.node}
    return {"input": inputs[0].name, "image_shape": image, "qdq": bool(ops & {"QuantizeLinear", "DequantizeLinear"})}


def _logger(trt):
    return trt.Logger(trt.Logger.WARNING)


def _major(trt) -> int:
    try:
        return int(str(trt.__version__).split(".")[0])
    except ValueError:
        return 0


def _network(trt, builder, typing: str):
    if typing == "strong" and _major(trt) < 11 and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    # TensorRT 11: every network is strongly typed; the flag is deprecated and ignored, so pass none.
    return builder.create_network(0)


def _parse(trt, network, logger, path: Path) -> None:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EdgekitError(
            f"TensorRT could not parse {path.name}: {errors[0] if errors else 'unknown error'}"
            f"{f' (+{len(errors) - 1} more)' if len(errors) > 1 else ''}: check the ONNX opset and ops are supported "
            "by this TensorRT"
        )


def _read_timing_cache(cache_file: Path | None, managed: bool) -> bytes:
    """The saved timing cache's bytes (b"" for none). edgekit's own ("auto") is a cache entry checked
    against its hash (a damaged one is discarded with a warning); a path the user gave is read as is."""
    if cache_file is None:
        return b""
    if managed:
        hit = load_verified(cache_file, bytes)
        return hit[0] if hit else b""
    return cache_file.read_bytes() if cache_file.is_file() else b""


def _save_timing_cache(cache_file: Path, managed: bool, blob: bytes) -> Path:
    """Write the timing cache; returns the file it went to (edgekit's own entries carry their hash)."""
    if managed:
        return store(cache_file, lambda tmp: tmp.write_bytes(blob)) or cache_file
    atomic_write_bytes(cache_file, blob)
    return cache_file


def _load_timing_cache(config, data: bytes) -> bool:
    """Use the saved timing cache when TensorRT accepts it; returns whether it did. A blob TensorRT
    cannot read (None) or rejects (ignore_mismatch=False: from another device) is replaced by an empty
    cache, which the build fills and which is saved afterwards."""
    timing = config.create_timing_cache(data) if data else None
    reused = timing is not None and bool(config.set_timing_cache(timing, False))
    if not reused:
        config.set_timing_cache(config.create_timing_cache(b""), False)
    return reused


def build_engine(onnx_path: Path, engine_path: Path, options: BuildOptions, identity: dict, trt=None) -> dict:
    """Build `engine_path` from `onnx_path` and write its stamp; returns what the report records.
    `trt` is the tensorrt module (injected by tests)."""
    if trt is None:
        trt = importlib.import_module("tensorrt")
    facts = onnx_facts(onnx_path)
    has_weak = hasattr(trt, "BuilderFlag") and hasattr(trt.BuilderFlag, "FP16")
    typing = network_typing(has_weak, options, onnx_path.name)
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = _network(trt, builder, typing)
    _parse(trt, network, logger, onnx_path)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
    config.builder_optimization_level = options.optimization_level
    flags = []
    if typing == "weak":
        flags.append("FP16")
        if facts["qdq"]:
            flags.append("INT8")  # weakly typed Q/DQ networks need it; there is no calibrator
        for flag in flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
    profile = builder.create_optimization_profile()
    profile.set_shape(facts["input"], *options.profile(facts["image_shape"]))
    config.add_optimization_profile(profile)

    cache_file = timing_cache_path(options.timing_cache, identity)
    managed = options.timing_cache == "auto"  # edgekit's own cache entry, not a file the user named
    cache_reused = _load_timing_cache(config, _read_timing_cache(cache_file, managed))

    progress = progress_monitor.attach(trt, config, onnx_path.name)  # None before TensorRT 10
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if progress is not None and progress.cancelled:
        raise KeyboardInterrupt  # Ctrl-C stopped TensorRT at our request: no engine, no timing cache written
    if serialized is None:
        raise EdgekitError(
            f"TensorRT failed to build an engine from {onnx_path.name} (see the TensorRT messages above): "
            "try a larger build.workspace_mb or a smaller build.max_batch"
        )
    atomic_write_bytes(engine_path, bytes(serialized))
    if cache_file:
        cache_file = _save_timing_cache(cache_file, managed, bytes(config.get_timing_cache().serialize()))
    info = {
        "typing": typing,
        "flags": flags,
        "qdq": facts["qdq"],
        "build_seconds": round(seconds, 2),
        "timing_cache": str(cache_file) if cache_file else None,
        "timing_cache_reused": cache_reused,
    }
    write_stamp(engine_path, make_stamp(engine_path, onnx_path, identity, options.stamped(), {"build": info}))
    return info
