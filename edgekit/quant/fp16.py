"""fp16 ONNX: float16 weights and activations, float32 inputs and outputs (keep_io_types).

Written with onnx helpers (onnxconverter_common is not a dependency): every float32 initializer and
Constant tensor becomes float16, every float32 tensor type inside the graph becomes float16, a Cast to
float16 follows each float32 graph input and a Cast back to float32 produces each graph output under
its original name. The file is meant for GPU targets (TensorRT, ORT's CUDA provider): ONNX Runtime's
CPU provider has few fp16 kernels and inserts float casts around the rest, so there it runs, slowly.
"""

from __future__ import annotations

import numpy as np

# Inputs that must stay float32 whatever the graph's type (op type -> input indices).
_KEEP_FLOAT = {"Resize": (1, 2), "Upsample": (1,)}


def _tensor_to_fp16(t):
    from onnx import TensorProto, numpy_helper

    if t.data_type != TensorProto.FLOAT:
        return t
    arr = numpy_helper.to_array(t)
    if np.isfinite(arr).all() and np.abs(arr).max(initial=0) > 65504:
        raise ValueError(f"initializer {t.name} holds values beyond fp16's range (max |x| {np.abs(arr).max():.3g})")
    new = numpy_helper.from_array(arr.astype(np.float16), t.name)
    t.CopyFrom(new)
    return t


def convert_float_to_float16(proto):
    """Return an fp16 copy of the float32 model `proto` with float32 inputs and outputs."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    keep = set()
    for node in graph.node:
        for k in _KEEP_FLOAT.get(node.op_type, ()):
            if k < len(node.input) and node.input[k]:
                keep.add(node.input[k])
    for init in graph.initializer:
        if init.name not in keep:
            _tensor_to_fp16(init)
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.TENSOR and node.output[0] not in keep:
                    _tensor_to_fp16(attr.t)
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
    for vi in graph.value_info:
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT and vi.name not in keep:
            vi.type.tensor_type.elem_type = TensorProto.FLOAT16

    casts_in = []
    for inp in graph.input:
        if inp.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{inp.name}_fp16"
        for node in graph.node:
            for k, name in enumerate(node.input):
                if name == inp.name:
                    node.input[k] = half
        casts_in.append(
            helper.make_node("Cast", [inp.name], [half], name=f"{inp.name}_cast_to_fp16", to=TensorProto.FLOAT16)
        )
    casts_out = []
    for out in graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT:
            continue
        half = f"{out.name}_fp16"
        for node in graph.node:
            for k, name in enumerate(node.output):
                if name == out.name:
                    node.output[k] = half
            for k, name in enumerate(node.input):
                if name == out.name:
                    node.input[k] = half
        casts_out.append(
            helper.make_node("Cast", [half], [out.name], name=f"{out.name}_cast_to_fp32", to=TensorProto.FLOAT)
        )
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    return model
