"""Which graph node a profiled kernel's time belongs to.

A runtime does not run the ONNX graph as written: ONNX Runtime fuses Conv+Relu into one kernel, runs a
Q/DQ group as QLinearConv, converts layouts (NCHWc, NHWC) and renames what it rewrites; TensorRT fuses
layers and names them after all of their nodes. This module gives each kernel's time to one graph node
(the *primary*: the one doing the kernel's op), marks the graph nodes a kernel absorbed as fused into it,
and keeps every kernel it cannot place as unmatched, with the reason, instead of guessing.

ORT names, as ONNX Runtime 1.2x-1.3x writes them (observed, not a documented contract):
- a kept or fused node keeps its name (`/stem/Conv` as FusedConv or QGemm);
- a rewritten node gets a `_token_<n>` suffix (`/stem/Conv_token_2` as NHWC QLinearConv);
- an NCHWc node is named after the tensor it computes plus `_nchwc` (`/Relu_output_0_nchwc` for the Conv
  whose Relu it fused);
- nodes it inserts (ReorderInput/Output, Transpose for a layout change, a moved DequantizeLinear) are named
  after their op or a tensor with other suffixes: no graph node, so unmatched."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from edgekit.backends.onnx_costs import Graph

# Runtime op -> the graph op it computes; other QLinear* ops map by dropping the prefix.
FAMILY = {
    "FusedConv": "Conv",
    "ConvInteger": "Conv",
    "NhwcFusedConv": "Conv",
    "FusedGemm": "Gemm",
    "QGemm": "Gemm",
    "FusedMatMul": "MatMul",
    "MatMulInteger": "MatMul",
    "MatMulIntegerToFloat": "MatMul",
    "DynamicQuantizeMatMul": "MatMul",
    "NhwcMaxPool": "MaxPool",
}
# Ops a runtime folds into the kernel before or after them: activations, residual adds, Q/DQ.
FUSABLE = {
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Add",
    "Sum",
    "Mul",
    "BatchNormalization",
    "Identity",
    "QuantizeLinear",
    "DequantizeLinear",
}
ORT_SUFFIX = re.compile(r"(_token_\d+|_nchwc)$")
LAYOUT_OPS = {"ReorderInput", "ReorderOutput", "Transpose", "MemcpyToHost", "MemcpyFromHost"}
UPSTREAM_HOPS = 3  # how far a fused kernel's name may sit from the node doing its op (Conv > Add > Relu)


def family(op: str) -> str:
    if op in FAMILY:
        return FAMILY[op]
    return op.removeprefix("QLinear") if op.startswith("QLinear") else op


@dataclass(frozen=True)
class Kernel:
    """One profiled kernel: its name and op as the runtime reports them, its median time per run."""

    name: str
    op: str
    ms: float


@dataclass
class Attribution:
    ms: dict[int, float] = field(default_factory=dict)  # primary node -> time of its kernels
    ran_as: dict[int, list[Kernel]] = field(default_factory=dict)
    fused: dict[int, int] = field(default_factory=dict)  # absorbed node -> primary node
    unmatched: list[tuple[Kernel, str]] = field(default_factory=list)  # kernel, why

    def assign(self, node: int, kernel: Kernel) -> None:
        self.ms[node] = self.ms.get(node, 0.0) + kernel.ms
        self.ran_as.setdefault(node, []).append(kernel)
        self.fused.pop(node, None)

    def absorb(self, node: int, into: int) -> None:
        if node != into and node not in self.ms and node not in self.fused:
            self.fused[node] = into


def _ort_anchor(name: str, graph: Graph) -> int | None:
    """The graph node a kernel name points at: a node of that name, or the producer of a tensor of that
    name (NCHWc naming), trying again with ORT's suffixes stripped one at a time."""
    while True:
        if name in graph.by_name:
            return graph.by_name[name]
        if name in graph.producer:
            return graph.producer[name]
        stripped = ORT_SUFFIX.sub("", name)
        if stripped == name:
            return None
        name = stripped


def _upstream_match(start: int, op_family: str, graph: Graph, taken: Attribution) -> list[int] | None:
    """Path from `start` up through fusable nodes to the nearest node of `op_family` with no kernel yet
    (breadth first, at most UPSTREAM_HOPS), ending with that node; None when there is none."""
    frontier = [[start]]
    for _ in range(UPSTREAM_HOPS):
        nxt = []
        for path in frontier:
            node = graph.nodes[path[-1]]
            if node.op_type not in FUSABLE:
                continue
            for tensor in node.input:
                up = graph.producer.get(tensor)
                if up is None or up in path:
                    continue
                if family(graph.costs[up].op_type) == op_family and up not in taken.ms:
                    return path + [up]
                nxt.append(path + [up])
        frontier = nxt
    return None


def attribute_ort(kernels: Iterable[Kernel], graph: Graph) -> Attribution:
    """Place ONNX Runtime's kernels (in execution order) on graph nodes; see the module docstring."""
    kernels = list(kernels)
    result = Attribution()
    for k in kernels:
        anchor = _ort_anchor(k.name, graph)
        if anchor is None:
            why = "inserted by ONNX Runtime (layout or format conversion)" if k.op in LAYOUT_OPS else "no graph node"
            result.unmatched.append((k, why))
            continue
        want = family(k.op)
        if family(graph.costs[anchor].op_type) == want:
            result.assign(anchor, k)
            continue
        path = _upstream_match(anchor, want, graph, result)
        if path is None:
            result.unmatched.append((k, f"named after {graph.costs[anchor].name} ({graph.costs[anchor].op_type})"))
            continue
        result.assign(path[-1], k)
        for node in path[:-1]:
            result.absorb(node, path[-1])
    place_generated(kernels, result, graph)
    absorb_neighbours(result, graph)
    return result


GENERATED = re.compile(r"^([A-Za-z]+)_\d+$")  # ORT's name for a node it made unnamed: "HardSigmoid_158"


def place_generated(kernels: list[Kernel], result: Attribution, graph: Graph) -> None:
    """Kernels ORT named itself (`<Op>_<n>`: the body of a function it inlined, e.g. HardSwish as
    HardSigmoid + Mul) carry no graph name. Such a kernel goes to the one graph node without a kernel of
    its own that sits between its neighbours in the run (reading the output of the matched kernel run
    before it, or read by the matched kernel run after it) and runs as its op (the node's own op or one of
    its ONNX function body). None or several such nodes: it stays unmatched."""
    placed = {id(k): n for n, ks in result.ran_as.items() for k in ks}
    order = [placed.get(id(k)) for k in kernels]
    for k, why in list(result.unmatched):
        m = GENERATED.match(k.name)
        if not m or m.group(1) != k.op:
            continue
        at = kernels.index(k)
        before = next((n for n in reversed(order[:at]) if n is not None), None)
        after = next((n for n in order[at + 1 :] if n is not None), None)
        near = _readers_of(before, graph) | _producers_of(after, graph)
        free = [
            n
            for n in near
            if graph.costs[n].macs == 0
            and n not in result.fused
            and _only_generated(n, result)
            and k.op in _runs_as(graph.nodes[n])
        ]
        if len(free) == 1:
            result.unmatched.remove((k, why))
            result.assign(free[0], k)
            order[at] = free[0]


def _runs_as(node: Any) -> set[str]:
    """The ops a node may run as: its own, and those of its ONNX function body (HardSwish: HardSigmoid, Mul)."""
    import onnx

    try:
        schema = onnx.defs.get_schema(node.op_type, domain=node.domain or "")
    except onnx.defs.SchemaError:  # a custom or contrib op: no function body known
        return {node.op_type}
    return {node.op_type} | {n.op_type for n in schema.function_body.node}  # empty without a body


def _only_generated(node: int, result: Attribution) -> bool:
    """No kernel yet, or only kernels ORT named itself (the other half of the same inlined function)."""
    return all(GENERATED.match(k.name) for k in result.ran_as.get(node, []))


def _readers_of(node: int | None, graph: Graph) -> set[int]:
    if node is None:
        return set()
    return {r for t in graph.nodes[node].output for r in graph.consumers.get(t, [])}


def _producers_of(node: int | None, graph: Graph) -> set[int]:
    if node is None:
        return set()
    return {graph.producer[t] for t in graph.nodes[node].input if t in graph.producer}


def integer_kernel(op: str) -> bool:
    """A kernel that runs a Q/DQ group in integers (QLinearConv, QGemm, ConvInteger, ...)."""
    return op.startswith("QLinear") or op in ("QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat")


def absorb_neighbours(result: Attribution, graph: Graph) -> None:
    """Nodes without a kernel of their own that a runtime folds into a neighbour: the DequantizeLinear
    nodes feeding an integer kernel (first, for every kernel: a DQ belongs to its reader), then the chain
    of fusable nodes after a kernel (Relu, then the QuantizeLinear ending a Q/DQ group) while each tensor
    has a single reader. A DequantizeLinear before a float kernel is left alone: ORT may have moved it."""
    for node, kernels in result.ran_as.items():
        if not any(integer_kernel(k.op) for k in kernels):
            continue
        for tensor in graph.nodes[node].input:
            up = graph.producer.get(tensor)
            if up is not None and graph.costs[up].op_type == "DequantizeLinear":
                result.absorb(up, node)
    for node in list(result.ms):
        current = node
        while graph.costs[current].op_type != "QuantizeLinear":  # a Q's reader is the next group's DQ
            outputs = [t for t in graph.nodes[current].output if t]
            readers = graph.consumers.get(outputs[0], []) if len(outputs) == 1 else []
            if len(readers) != 1:
                break
            nxt = readers[0]
            if graph.costs[nxt].op_type not in FUSABLE - {"DequantizeLinear"} or nxt in result.ms:
                break
            if nxt in result.fused:
                break
            result.absorb(nxt, node)
            current = nxt


TRT_SPLIT = re.compile(r"[\s+(),\[\]{}]+")


def attribute_trt(kernels: Iterable[Kernel], graph: Graph) -> Attribution:
    """Place TensorRT layers on graph nodes. A layer is named after the ONNX nodes it runs ("/stem/Conv +
    /Relu", "PWN(/act/Sigmoid, /act/Mul)"); its time goes to the node with the most MACs among them, or
    the only one. Reformatting layers, layers running several MAC-carrying nodes and Myelin's ranges
    ("{ForeignNode[/a/Conv.../fc/Gemm]}") stay unmatched: splitting their time would be a guess."""
    result = Attribution()
    for k in kernels:
        if k.name.startswith("Reformatting CopyNode"):
            result.unmatched.append((k, "inserted by TensorRT (reformat)"))
            continue
        if "..." in k.name:  # Myelin's "{ForeignNode[/first...last]}": a range, its nodes unnamed
            result.unmatched.append((k, "one layer for a range of graph nodes: time not split"))
            continue
        named = list(dict.fromkeys(graph.by_name[t] for t in TRT_SPLIT.split(k.name) if t in graph.by_name))
        heavy = [n for n in named if graph.costs[n].macs > 0]
        if not named:
            result.unmatched.append((k, "no graph node named in this layer"))
        elif len(heavy) > 1:
            result.unmatched.append((k, f"one layer for {len(heavy)} graph nodes with MACs: time not split"))
        else:
            primary = heavy[0] if heavy else named[0]
            result.assign(primary, k)
            for node in named:
                result.absorb(node, primary)
    return result
