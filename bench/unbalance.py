"""A constructed, honest hard case for int8: the same function with unbalanced channel ranges.

ReLU is positively homogeneous (relu(s * x) = s * relu(x) for s > 0), so in a block
expand Conv -> Relu -> depthwise Conv -> Relu -> project Conv, scaling channel c of the expand
conv's weights and bias by s_c, the depthwise conv's bias by s_c, and the project conv's input
weights for channel c by 1 / s_c leaves the network's output unchanged in exact arithmetic. The
channel ranges of those tensors then differ by up to `spread`^2, the situation BN folding creates in
real networks (Nagel et al., "Data-Free Quantization", 2019): per-tensor activation scales crush
the small channels and int8 breaks in a few layers while the rest of the network quantizes well.
Models without such blocks get the same treatment on Conv -> Relu -> Conv pairs.
That is the case sensitivity-driven mixed precision is for; the fp32 model is checked to be the same."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def _consumers(graph, name: str) -> list:
    return [n for n in graph.node if name in n.input]


def relu_blocks(proto) -> list[tuple]:
    """(expand, depthwise, project) Conv triples joined only by Relu nodes."""
    graph = proto.graph
    out = []
    for expand in (n for n in graph.node if n.op_type == "Conv"):
        chain = [expand]
        for _ in range(2):
            nxt = _consumers(graph, chain[-1].output[0])
            if len(nxt) != 1 or nxt[0].op_type != "Relu":
                break
            after = _consumers(graph, nxt[0].output[0])
            if len(after) != 1 or after[0].op_type != "Conv":
                break
            chain.append(after[0])
        if len(chain) == 3 and _group(chain[1]) > 1 and len(chain[1].input) == 3 and len(expand.input) == 3:
            out.append(tuple(chain))
    return out


def relu_pairs(proto) -> list[tuple]:
    """(first, second) Conv pairs joined by one Relu, the second a plain (group 1) convolution."""
    graph = proto.graph
    out = []
    for first in (n for n in graph.node if n.op_type == "Conv" and len(n.input) == 3):
        relu = _consumers(graph, first.output[0])
        if len(relu) != 1 or relu[0].op_type != "Relu":
            continue
        after = _consumers(graph, relu[0].output[0])
        if len(after) == 1 and after[0].op_type == "Conv" and _group(after[0]) == 1:
            out.append((first, after[0]))
    return out


def _group(node) -> int:
    return next((a.i for a in node.attribute if a.name == "group"), 1)


def unbalance(proto, blocks: int = 2, spread: float = 16.0, seed: int = 0):
    """A copy of `proto` with the first `blocks` ReLU blocks' channels rescaled by factors drawn
    log-uniformly from [1 / spread, spread]. Returns (model, names of the rescaled convs)."""
    model = onnx.ModelProto()
    model.CopyFrom(proto)
    inits = {i.name: i for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    touched = []

    def get(name):
        return numpy_helper.to_array(inits[name]).copy()

    def put(name, array):
        inits[name].CopyFrom(numpy_helper.from_array(array.astype(np.float32), name))

    for expand, dw, project in relu_blocks(model)[:blocks]:
        w_e, b_e, b_dw, w_p = get(expand.input[1]), get(expand.input[2]), get(dw.input[2]), get(project.input[1])
        s = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=w_e.shape[0])).astype(np.float32)
        put(expand.input[1], w_e * s[:, None, None, None])
        put(expand.input[2], b_e * s)
        put(dw.input[2], b_dw * s)
        put(project.input[1], w_p / s[None, :, None, None])
        touched += [expand.name, dw.name, project.name]
    if not touched:  # no expand/depthwise/project block: Conv -> Relu -> Conv pairs
        for first, second in relu_pairs(model)[:blocks]:
            w1, b1, w2 = get(first.input[1]), get(first.input[2]), get(second.input[1])
            s = np.exp(rng.uniform(-np.log(spread), np.log(spread), size=w1.shape[0])).astype(np.float32)
            put(first.input[1], w1 * s[:, None, None, None])
            put(first.input[2], b1 * s)
            put(second.input[1], w2 / s[None, :, None, None])
            touched += [first.name, second.name]
    return model, touched
