"""What each node of an ONNX graph costs at a fixed batch, from the graph alone: multiply-accumulates,
parameters and bytes moved (its input, weight and output tensors at their element types).

Shapes come from onnx.shape_inference on a copy whose inputs have the batch dimension fixed (a symbolic
`batch` otherwise leaves every activation's size unknown). Counted MACs: Conv and ConvTranspose (also
QLinearConv and ConvInteger), Gemm and MatMul (also QLinearMatMul and MatMulInteger); in a Q/DQ model the
Conv between DequantizeLinear and QuantizeLinear is an ordinary Conv node, so it counts the same. Every
other op counts 0: their cost is the bytes they move, which is what the intensity column shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import EdgekitError

# Weighted ops whose constant inputs are parameters even when they are int8 (QOperator models):
# op -> input indices of the weight and bias.
QUANT_WEIGHTS = {"QLinearConv": (3, 8), "ConvInteger": (1,), "QLinearMatMul": (3,), "MatMulInteger": (1,)}
QDQ = ("QuantizeLinear", "DequantizeLinear")


@dataclass(frozen=True)
class NodeCost:
    name: str  # the node's name, or op:first-output for an unnamed node
    op_type: str
    macs: int
    params: int
    bytes: int
    shapes_known: bool  # False: a tensor's shape was not inferred, so bytes (and maybe MACs) are a floor


@dataclass
class Graph:
    """The top-level nodes of a model with their costs, and who produces and consumes each tensor."""

    nodes: list[Any]  # onnx.NodeProto
    costs: list[NodeCost]
    producer: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, list[int]] = field(default_factory=dict)
    by_name: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, node in enumerate(self.nodes):
            for t in node.output:
                self.producer.setdefault(t, i)
            for t in node.input:
                if t:
                    self.consumers.setdefault(t, []).append(i)
            if node.name:
                self.by_name.setdefault(node.name, i)  # names should be unique; the first wins if not


def fix_batch(model: Any, batch: int) -> Any:
    """A copy of `model` with dimension 0 of every graph input set to `batch` and shapes inferred. The
    copy's intermediate value_info is dropped first: an exporter's entries keep the symbolic batch."""
    import onnx

    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    initializers = {t.name for t in fixed.graph.initializer}
    for inp in fixed.graph.input:
        dims = inp.type.tensor_type.shape.dim
        if inp.name not in initializers and len(dims) > 0:
            dims[0].Clear()
            dims[0].dim_value = batch
    for out in fixed.graph.output:  # declared `batch`, inferred as a number: let inference fill it in
        dims = out.type.tensor_type.shape.dim
        if len(dims) > 0 and not dims[0].HasField("dim_value"):
            dims[0].Clear()
    del fixed.graph.value_info[:]
    return onnx.shape_inference.infer_shapes(fixed, check_type=False, strict_mode=False, data_prop=True)


TensorInfo = tuple[list[int] | None, int]  # (shape or None when unknown, element type)


def tensor_infos(model: Any) -> dict[str, TensorInfo]:
    """Shape and element type of every tensor shape inference (or the file) knows: inputs, outputs,
    intermediate values, initializers and Constant nodes' outputs."""
    out: dict[str, TensorInfo] = {}
    g = model.graph
    for vi in [*g.input, *g.value_info, *g.output]:
        tt = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        known = tt.HasField("shape") and all(d is not None for d in dims)
        out[vi.name] = ([int(d) for d in dims if d is not None] if known else None, tt.elem_type)
    for t in g.initializer:
        out[t.name] = (list(t.dims), t.data_type)
    for node in g.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    out[node.output[0]] = (list(attr.t.dims), attr.t.data_type)
    return out


def itemsize(elem_type: int) -> int:
    import onnx

    try:
        return int(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).itemsize)
    except (KeyError, TypeError, ValueError):  # undefined, string or a type numpy lacks
        return 0


def _numel(shape: list[int] | None) -> int:
    return int(np.prod(shape, dtype=np.int64)) if shape is not None else 0


def macs_of(node: Any, infos: dict[str, TensorInfo]) -> int:
    """Multiply-accumulates of one node, 0 for ops without any or when a shape is unknown."""

    def shape(i: int, outputs: bool = False) -> list[int] | None:
        names = node.output if outputs else node.input
        return infos.get(names[i], (None, 0))[0] if i < len(names) and names[i] else None

    op = node.op_type
    out = shape(0, outputs=True)
    if out is None:
        return 0
    if op in ("Conv", "QLinearConv", "ConvInteger"):
        w = shape(3 if op == "QLinearConv" else 1)  # (Cout, Cin/group, *kernel)
        return _numel(out) * _numel(w[1:]) if w else 0
    if op == "ConvTranspose":
        x, w = shape(0), shape(1)  # w: (Cin, Cout/group, *kernel): each input element meets Cout/group x kernel
        return _numel(x) * _numel(w[1:]) if x and w else 0
    if op == "Gemm":
        a = shape(0)
        trans_a = next((attr.i for attr in node.attribute if attr.name == "transA"), 0)
        return _numel(out) * a[0 if trans_a else 1] if a and len(a) == 2 else 0
    if op in ("MatMul", "QLinearMatMul", "MatMulInteger"):
        a = shape(0)
        return _numel(out) * a[-1] if a else 0
    return 0


@dataclass
class _Tensors:
    """What the cost functions look up: tensor shapes and types, constants, producers and readers."""

    infos: dict[str, TensorInfo]
    constants: set[str]
    producer: dict[str, Any]
    consumers: dict[str, list[Any]]

    def info(self, name: str) -> TensorInfo:
        return self.infos.get(name, (None, 0))

    def dequantized(self, tensor: str) -> str | None:
        """The integer tensor a DequantizeLinear output was made from, or None."""
        node = self.producer.get(tensor)
        return node.input[0] if node is not None and node.op_type == "DequantizeLinear" else None

    def in_qdq_group(self, node: Any) -> bool:
        """Every input dequantized (or a constant) and every output only quantized: the pattern ORT runs
        as one integer kernel (QLinearConv, QGemm, ...)."""
        inputs = [n for n in node.input if n]
        outputs = [n for n in node.output if n]
        return (
            node.op_type not in QDQ
            and any(self.dequantized(n) for n in inputs)
            and all(self.dequantized(n) or n in self.constants for n in inputs)
            and all(self.consumers.get(n) and all(r.op_type == "QuantizeLinear" for r in self.consumers[n])
                    for n in outputs)
        )  # fmt: skip


def params_of(node: Any, t: _Tensors) -> int:
    """Elements of the node's weights: floating-point constants it reads, directly or through a
    DequantizeLinear of a constant (a Q/DQ model's int8 weights), and a QOperator node's int8 weight and
    bias. Q/DQ nodes' own scales and zero points are quantization parameters, counted with no node."""
    if node.op_type in QDQ:
        return 0
    total = 0
    for i, name in enumerate(node.input):
        source = t.dequantized(name) if name else None
        if source is not None and source in t.constants:
            total += _numel(t.info(source)[0])
        elif name in t.constants and (i in QUANT_WEIGHTS.get(node.op_type, ()) or _is_float(t.info(name)[1])):
            total += _numel(t.info(name)[0])
    return total


def _is_float(elem_type: int) -> bool:
    import onnx

    return elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
                         onnx.TensorProto.DOUBLE)  # fmt: skip


def bytes_of(node: Any, t: _Tensors) -> tuple[int, bool]:
    """(bytes read and written, all shapes known). A node inside a complete Q/DQ group counts its tensors
    at their integer types, as the integer kernel ORT fuses the group into reads and writes them, not at
    the float type the graph spells out."""
    grouped = t.in_qdq_group(node)
    total, known = 0, True
    for name in [n for n in node.input if n]:
        shape, elem = t.info((t.dequantized(name) if grouped else None) or name)
        known &= shape is not None
        total += _numel(shape) * itemsize(elem)
    for name in [n for n in node.output if n]:
        shape, elem = t.info(name)
        if grouped:
            elem = t.info(t.consumers[name][0].output[0])[1] or elem
        known &= shape is not None
        total += _numel(shape) * itemsize(elem)
    return total, known


def load_graph(model: Any, batch: int = 1) -> Graph:
    """The costs of every top-level node of `model` (a path or ModelProto) at batch `batch`."""
    import onnx

    if isinstance(model, (str, Path)):
        try:
            model = onnx.load(str(model))
        except Exception as exc:  # protobuf's DecodeError and friends
            raise EdgekitError(f"{model} is not an ONNX model ({type(exc).__name__}): give a .onnx file") from None
    fixed = fix_batch(model, batch)
    nodes = list(fixed.graph.node)
    consumers: dict[str, list[Any]] = {}
    for n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append(n)
    t = _Tensors(
        infos=tensor_infos(fixed),
        constants={i.name for i in fixed.graph.initializer}
        | {n.output[0] for n in nodes if n.op_type == "Constant" and n.output},
        producer={name: n for n in nodes for name in n.output},
        consumers=consumers,
    )
    costs = []
    for n in nodes:
        moved, known = bytes_of(n, t)
        name = n.name or f"{n.op_type}:{n.output[0] if n.output else '?'}"
        costs.append(NodeCost(name, n.op_type, macs_of(n, t.infos), params_of(n, t), moved, known))
    return Graph(nodes, costs)
