"""Shared by the zoo tests: narrow copies of heavy models, and norms that make outputs O(1)."""

import torch

import edgekit
from edgekit.metrics import count_params


def narrow_width(name: str) -> float:
    """Narrow copies for heavy models: counted on the meta device, so nothing is allocated."""
    with torch.device("meta"):
        params = count_params(edgekit.create_model(name, num_classes=10, small_input=True))
    return 1.0 if params < 3e6 else 0.5 if params < 12e6 else 0.25


def randomize_norms(model: torch.nn.Module) -> None:
    """Fresh-init norms are identities and some families init their heads near zero, which leaves
    logits of 1e-13 that any parity check passes. Random statistics make the outputs O(1)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            assert m.running_mean is not None and m.running_var is not None  # track_running_stats, the default
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(m, torch.nn.Linear):
            torch.nn.init.normal_(m.weight, 0, (1 / m.in_features) ** 0.5)


def weights_not_int8(proto) -> list[str]:
    """Conv/Gemm/MatMul nodes of an int8 Q/DQ file whose weight is not an int8 initializer feeding a
    DequantizeLinear (an empty list: every weight is stored and fed as int8)."""
    import onnx

    inits = {i.name: i for i in proto.graph.initializer}
    producers = {o: n for n in proto.graph.node for o in n.output}
    bad = []
    for node in proto.graph.node:
        if node.op_type not in ("Conv", "Gemm", "MatMul") or node.input[1] not in producers | inits:
            continue
        dq = producers.get(node.input[1])
        if dq is None or dq.op_type != "DequantizeLinear" or inits[dq.input[0]].data_type != onnx.TensorProto.INT8:
            bad.append(node.name)
    return bad
