"""Per-layer int8 sensitivity and mixed precision (keep the most harmful layers in float).

Method. The plain int8 Q/DQ model is quantized once. For each quantized weighted node (Conv, Gemm,
MatMul whose inputs come from DequantizeLinear) a variant of that same Q/DQ graph is made in which the
node runs as ONNX Runtime's `nodes_to_exclude=[node]` would leave it: its weight and bias are the fp32
model's float tensors; its activation input is read in float when the producer is not a quantized node
(a graph input, HardSwish on the cpu target, ...) and keeps its Q/DQ when the producer is quantized;
its output skips its Q/DQ when no quantized node reads it. Measured on the demo MobileNetV3 (14 layers
sampled) the variant's logits equalled the re-quantized model's exactly for 6 layers and were within
0.35 (max abs logit) for the rest; the tests check it on a small CNN.
So each layer costs one graph edit and one ONNX Runtime session, not a re-quantization. The ranking
sessions run unoptimized (ORT_DISABLE_ALL: Q/DQ simulated in float, the graph's ONNX meaning): with its
graph optimizations on, ORT 1.32 returned almost the plain int8 model's logits for such an edited graph (a
Conv given float weights between Q/DQ nodes), so the edit seemed to change nothing. The int8 baseline of
the ranking runs the same way; the greedy steps then measure the real re-quantized files, optimized.
Each variant is run on the held-out images and its effect is measured against the fp32 ONNX model:
  - `logit_mse_gain`: how much the mean squared error of the logits to fp32 falls when the node is float,
  - `top1_gain`: the accuracy points it gains.
Layers are ranked by the logit-error gain (continuous and less noisy than top-1 on a 1,000-image
slice). The greedy pass then re-quantizes with the top-k layers excluded (from the saved calibration
ranges, no new calibration) and re-measures the held-out drop until it is within `max_drop` or
`max_float_layers` is reached. Individual effects do not add up exactly, which is why every step is
re-measured instead of predicted.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.progress import Progress
from edgekit.quant.ptq import WEIGHTED_OPS


def session(model, threads: int = 0, optimize: bool = True):
    """An ONNX Runtime CPU session from a path or a ModelProto. optimize=False runs the graph as
    written (Q/DQ simulated in float, the ONNX semantics), without ORT's graph rewrites."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    data = model.SerializeToString() if hasattr(model, "SerializeToString") else str(model)
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def logits_of(model, images: np.ndarray, batch: int = 250, optimize: bool = True) -> np.ndarray:
    sess = session(model, optimize=optimize)
    name = sess.get_inputs()[0].name
    return np.concatenate([sess.run(None, {name: np.ascontiguousarray(images[i : i + batch])})[0] for i in range(0, len(images), batch)])


@dataclass
class HeldOut:
    """Held-out training images with their labels and the fp32 model's logits on them."""

    images: np.ndarray
    labels: np.ndarray
    ref_logits: np.ndarray
    ref_top1: float = field(init=False)

    def __post_init__(self):
        self.ref_top1 = top1(self.ref_logits, self.labels)

    def drop(self, logits: np.ndarray) -> float:
        """Top-1 drop in points (percentage points) against the fp32 model."""
        return 100.0 * (self.ref_top1 - top1(logits, self.labels))

    def mse(self, logits: np.ndarray) -> float:
        return float(((logits - self.ref_logits) ** 2).mean())


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def quantized_nodes(proto) -> list[str]:
    """Names of weighted nodes that read at least one DequantizeLinear output, in graph order."""
    dq_outputs = {o for n in proto.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return [n.name for n in proto.graph.node if n.op_type in WEIGHTED_OPS and any(i in dq_outputs for i in n.input)]


def float_variant(int8, fp32, node_name: str):
    """A copy of the Q/DQ model `int8` in which node `node_name` runs as `nodes_to_exclude=[node]`
    would leave it: fp32 weight and bias; its input read in float where its producer is not quantized
    (else the producer's Q/DQ stays); its output left in float where no quantized node reads it."""
    import onnx

    variant = onnx.ModelProto()
    variant.CopyFrom(int8)
    graph = variant.graph
    inits = {i.name for i in graph.initializer}
    dq_of = {n.output[0]: n for n in graph.node if n.op_type == "DequantizeLinear"}
    q_of = {n.output[0]: n for n in graph.node if n.op_type == "QuantizeLinear"}
    producer = {o: n for n in graph.node for o in n.output}
    fp32_producer = {o: n for n in fp32.graph.node for o in n.output}
    quantized = {n.name for n in graph.node if n.op_type not in ("QuantizeLinear", "DequantizeLinear") and any(i in dq_of for i in n.input)}
    used = inits | set(producer) | {i.name for i in graph.input}
    target = next(n for n in graph.node if n.name == node_name)
    source = next((n for n in fp32.graph.node if n.name == node_name), None)
    if source is None or len(source.input) != len(target.input):
        raise LookupError(f"node {node_name} not found unchanged in the fp32 model")
    fp32_inits = {i.name: i for i in fp32.graph.initializer}
    for k, name in enumerate(target.input):
        dq = dq_of.get(name)
        if dq is None:
            continue
        if dq.input[0] in inits:  # weight or bias
            if source.input[k] not in fp32_inits:
                continue
            tensor = onnx.TensorProto()
            tensor.CopyFrom(fp32_inits[source.input[k]])
            tensor.name = f"{source.input[k]}_float"
            while tensor.name in used:
                tensor.name += "_"
            used.add(tensor.name)
            graph.initializer.append(tensor)
            target.input[k] = tensor.name
            continue
        q = q_of.get(dq.input[0])
        made_by = producer.get(q.input[0]) if q is not None else None
        if q is not None and (made_by is None or made_by.name not in quantized) and q.input[0] == source.input[k]:
            target.input[k] = q.input[0]  # unquantized producer (or graph input): the excluded node reads float
    graph_outputs = {o.name for o in graph.output}
    for out in list(target.output):
        qs = [n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == out]
        dqs = [n for n in graph.node if n.op_type == "DequantizeLinear" and any(n.input[0] == q.output[0] for q in qs)]
        if not qs or len(dqs) != len(qs):
            continue
        dq_outs = {d.output[0] for d in dqs}
        readers = [n for n in graph.node if any(i in dq_outs for i in n.input)]
        if any(r.name in quantized for r in readers):
            continue  # a quantized reader keeps the Q/DQ
        final = sorted(dq_outs & graph_outputs)
        name = final[0] if len(final) == 1 else out  # the name this tensor has in the fp32 model
        own = fp32_producer.get(name)
        if own is None or own.name != node_name:
            continue  # e.g. a removed Relu's tensor: its Q/DQ does the clipping
        for r in readers:
            for k, i in enumerate(r.input):
                if i in dq_outs:
                    r.input[k] = name
        for k, o in enumerate(target.output):
            if o == out:
                target.output[k] = name
        keep = [n for n in graph.node if not any(n is x for x in qs + dqs)]
        del graph.node[:]
        graph.node.extend(keep)
    return variant


def rank_layers(int8_path: Path, fp32_path: Path, held: HeldOut) -> list[dict]:
    """Each quantized layer's measured effect when kept in float, most harmful (largest gain) first."""
    import onnx

    int8, fp32 = onnx.load(str(int8_path)), onnx.load(str(fp32_path))
    base = logits_of(int8, held.images, optimize=False)
    base_mse, base_drop = held.mse(base), held.drop(base)
    names = quantized_nodes(int8)
    bar = Progress("sensitivity", len(names), unit="layer")
    out = []
    for name in names:
        logits = logits_of(float_variant(int8, fp32, name), held.images, optimize=False)
        out.append({
            "layer": name,
            "logit_mse_gain": round(base_mse - held.mse(logits), 6),
            "top1_gain": round(base_drop - held.drop(logits), 2),
        })
        bar.update(1)
    out.sort(key=lambda r: (-r["logit_mse_gain"], -r["top1_gain"]))
    return out


def mixed_precision(quantizer, dst: Path, int8_path: Path, fp32_path: Path, held: HeldOut, plain_drop: float,
                    max_drop: float, max_float_layers: int) -> dict:
    """Greedy: keep the most harmful layers in float, one more per step, until the held-out drop is
    within max_drop. Writes the best model found to `dst`; returns what was kept and why."""
    ranking = rank_layers(int8_path, fp32_path, held)
    steps = [{"float_layers": 0, "drop": round(plain_drop, 2)}]
    best_drop, best_k = plain_drop, 0
    tmp = dst.with_name(f".{dst.name}.mixed")
    try:
        for k in range(1, min(max_float_layers, len(ranking)) + 1):
            exclude = [r["layer"] for r in ranking[:k]]
            quantizer.quantize(tmp, exclude)
            drop = held.drop(logits_of(tmp, held.images))
            steps.append({"float_layers": k, "drop": round(drop, 2)})
            if drop < best_drop - 1e-9:
                best_drop, best_k = drop, k
                tmp.replace(dst)
            if drop <= max_drop:
                break
    finally:
        tmp.unlink(missing_ok=True)
    kept = ranking[:best_k]
    return {
        "met": best_drop <= max_drop,
        "float_layers": [{"layer": r["layer"], "why": {"logit_mse_gain": r["logit_mse_gain"], "top1_gain": r["top1_gain"]}} for r in kept],
        "drop_before": round(plain_drop, 2),
        "drop_after": round(best_drop, 2),
        "steps": steps,
        "ranking": ranking[: max(10, best_k)],
    }
