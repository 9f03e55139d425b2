"""Per-layer profile (edgekit/backends/profile.py): costs per ONNX node against hand-computed values, ONNX
Runtime's kernels placed on graph nodes (fp32 with its fusions and NCHWc renames, int8 Q/DQ as QLinearConv),
the terminal table, the report.html section, and TensorRT's layer profiler through a fake module."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.backends.onnx_costs import load_graph
from edgekit.backends.profile import engine_result, flag, format_profile, profile_onnx
from edgekit.backends.profile_match import Kernel, attribute_ort, attribute_trt
from edgekit.backends.tensorrt.layer_profile import attach, time_layers
from edgekit.report_profile import profile_section_html

SIZE = (1, 16, 16)
# Hand-computed at batch 1: MACs = output elements x (in_channels / groups) x kernel elements.
STEM_MACS = 8 * 16 * 16 * 1 * 9  # Conv2d(1, 8, 3, padding=1)
DW_MACS = 8 * 16 * 16 * 1 * 9  # Conv2d(8, 8, 3, padding=1, groups=8): one input channel per output
PW_MACS = 16 * 16 * 16 * 8  # Conv2d(8, 16, 1)
FC_MACS = 256 * 10  # Linear(16 * 4 * 4, 10)
# dw conv, fp32: input 8x16x16, weight 8x1x3x3, bias 8, output 8x16x16, 4 bytes each
DW_PARAMS = 8 * 9 + 8
DW_BYTES = 4 * (8 * 16 * 16 + 8 * 9 + 8 + 8 * 16 * 16)
# the same conv in the int8 model: uint8 activations, int8 weights, int32 bias
DW_INT8_BYTES = 8 * 16 * 16 + 8 * 9 + 4 * 8 + 8 * 16 * 16
ROW_KEYS = {"node", "op_type", "time_ms", "time_share", "macs", "mac_share", "params", "bytes", "intensity", "note"}


class Shuffle(nn.Module):
    def forward(self, x):
        n, c, h, w = x.shape
        return x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class Tiny(nn.Module):
    """A stem conv, a depthwise and a pointwise conv, a channel shuffle and a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.shuffle = Shuffle()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = self.dw(torch.relu(self.stem(x)))
        x = self.shuffle(torch.relu(self.pw(x)))
        return self.fc(self.pool(x).flatten(1))


@pytest.fixture(scope="module")
def fp32_path(tmp_path_factory):
    from edgekit.export.onnx_file import save_onnx, to_onnx

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("profile") / "tiny.onnx"
    save_onnx(to_onnx(Tiny().eval(), SIZE, 17), path)  # dynamic batch: a symbolic `batch` dimension
    return path


@pytest.fixture(scope="module")
def int8_path(fp32_path):
    from edgekit.quant.ptq import PtqSettings, Quantizer

    images = np.random.default_rng(0).standard_normal((32, *SIZE)).astype(np.float32)
    dst = fp32_path.with_name("tiny.int8.onnx")
    with Quantizer(fp32_path, images, PtqSettings(calib_batch=16), fp32_path.parent) as q:
        q.quantize(dst)
    return dst


@pytest.fixture(scope="module")
def fp32_profile(fp32_path):
    return profile_onnx(fp32_path, runs=3, warmup=1)


def by_node(result: dict) -> dict[str, dict]:
    return {r["node"]: r for r in result["rows"]}


def test_costs_match_hand_computed_values(fp32_path):
    costs = {c.name: c for c in load_graph(fp32_path).costs}
    assert costs["/stem/Conv"].macs == STEM_MACS
    assert costs["/dw/Conv"].macs == DW_MACS
    assert costs["/pw/Conv"].macs == PW_MACS
    assert costs["/fc/Gemm"].macs == FC_MACS
    assert costs["/dw/Conv"].params == DW_PARAMS and costs["/dw/Conv"].bytes == DW_BYTES
    assert costs["/fc/Gemm"].params == 256 * 10 + 10
    assert costs["/shuffle/Transpose"].macs == 0 and costs["/shuffle/Transpose"].bytes == 2 * 4 * 16 * 16 * 16
    assert all(c.shapes_known for c in costs.values())  # the symbolic batch was fixed before inference
    at_two = {c.name: c for c in load_graph(fp32_path, batch=2).costs}
    assert at_two["/pw/Conv"].macs == 2 * PW_MACS and at_two["/pw/Conv"].params == costs["/pw/Conv"].params


def test_profile_places_every_kernel_and_shares_sum_to_one(fp32_path, fp32_profile):
    result = fp32_profile
    assert result["backend"] == "onnxruntime" and result["threads"] == 1 and result["runs"] == 3
    rows = by_node(result)
    graph_nodes = [c.name for c in load_graph(fp32_path).costs]
    assert set(graph_nodes) <= set(rows)  # every graph node has its row
    assert all(set(r) >= ROW_KEYS for r in result["rows"])
    assert sum(r["time_share"] for r in result["rows"]) == pytest.approx(1.0)
    unmatched = [r for r in result["rows"] if r["node"] not in graph_nodes]
    assert sum(r["time_ms"] for r in unmatched) == pytest.approx(result["unmatched_ms"], abs=1e-3)
    assert all(r["note"].startswith("unmatched:") and r["macs"] == 0 for r in unmatched)
    for name in ("/stem/Conv", "/dw/Conv", "/pw/Conv", "/fc/Gemm"):
        assert rows[name]["time_ms"] > 0, name
    # ORT fuses each Relu into the conv before it: the Relu has no time of its own and says where it went
    assert rows["/Relu"]["time_ms"] == 0 and rows["/Relu"]["note"] == "fused into /stem/Conv"
    assert sum(r["mac_share"] for r in result["rows"]) == pytest.approx(1.0)
    times = [r["time_ms"] for r in result["rows"]]
    assert times == sorted(times, reverse=True)
    assert result["total_ms"] == pytest.approx(sum(times), abs=1e-3) and result["measured_ms"] > 0
    assert json.loads(json.dumps(result)) == result  # what `edgekit profile --json` prints


def test_int8_model_profiles_with_its_convs_counted(int8_path, fp32_path):
    result = profile_onnx(int8_path, runs=3, warmup=1)
    rows = by_node(result)
    fp32 = {c.name: c.macs for c in load_graph(fp32_path).costs}
    for name in ("/stem/Conv", "/dw/Conv", "/pw/Conv", "/fc/Gemm"):
        assert rows[name]["macs"] == fp32[name], name  # the Conv between DQ and Q counts as a conv
        assert rows[name]["time_ms"] > 0, name
    assert "ran as QLinearConv" in rows["/dw/Conv"]["note"]
    assert rows["/dw/Conv"]["bytes"] == DW_INT8_BYTES and rows["/dw/Conv"]["params"] == DW_PARAMS
    assert rows["dw.weight_DequantizeLinear"]["note"] == "fused into /dw/Conv"
    assert sum(r["time_share"] for r in result["rows"]) == pytest.approx(1.0)


def test_formatter_names_the_columns_and_lists_the_slowest_rows(fp32_profile):
    text = format_profile(fp32_profile, top=3)
    header = text.splitlines()[2]
    for column in ("node", "op", "time ms", "time %", "MACs", "MAC %", "params", "bytes", "MAC/B", "note"):
        assert column in header
    assert "tiny.onnx on onnxruntime, 1 thread, median of 3 runs" in text
    assert f"{len(fp32_profile['rows']) - 3} more rows" in text
    slowest = [r["node"] for r in fp32_profile["rows"][:3]]
    assert [line.split()[0] for line in text.splitlines()[3:6]] == slowest
    assert "flag: time share > 2x MAC share and > 2% of the time" in text


def test_flag_marks_time_far_above_mac_share():
    row = {"time_share": 0.30, "mac_share": 0.05, "matched": True}
    assert flag(row) == "slow for its MACs"
    assert flag({**row, "mac_share": 0.2}) == ""  # 1.5x: not flagged
    assert flag({**row, "time_share": 0.015, "mac_share": 0.0}) == ""  # under 2% of the time
    assert flag({**row, "matched": False}) == ""  # a runtime-inserted kernel has no MACs to compare with


def test_ort_renames_and_generated_kernels_are_placed_or_kept_unmatched(fp32_path):
    """NCHWc names the conv after the Relu output it fused, a rewritten node gets a _token suffix, an
    inlined function body gets '<Op>_<n>': each lands on its node; a reorder and an unknown kernel stay
    unmatched with their time."""
    graph = load_graph(fp32_path)
    kernels = [
        Kernel("/Relu_output_0_nchwc", "Conv", 0.5),
        Kernel("ReorderOutput_token_3", "ReorderOutput", 0.1),
        Kernel("/dw/Conv_token_7", "Conv", 0.2),
        Kernel("/pw/Conv", "Conv", 0.3),
        Kernel("Relu_41", "Relu", 0.05),  # between /pw/Conv and its reader: /Relu_1
        Kernel("/shuffle/Reshape", "Reshape", 0.01),
        Kernel("Mystery_9", "Mystery", 0.04),
    ]
    got = attribute_ort(kernels, graph)
    name = {i: c.name for i, c in enumerate(graph.costs)}
    placed = {name[n]: ms for n, ms in got.ms.items()}
    assert placed == {"/stem/Conv": 0.5, "/dw/Conv": 0.2, "/pw/Conv": 0.3, "/Relu_1": 0.05, "/shuffle/Reshape": 0.01}
    assert {name[n]: name[p] for n, p in got.fused.items()} == {"/Relu": "/stem/Conv"}
    assert [(k.name, why) for k, why in got.unmatched] == [
        ("ReorderOutput_token_3", "inserted by ONNX Runtime (layout or format conversion)"),
        ("Mystery_9", "no graph node"),
    ]


class FakeIProfiler:
    """TensorRT 10's documented shape: subclasses call the base __init__ and override report_layer_time."""

    def __init__(self):
        self.base_init = True


def test_tensorrt_layer_times_through_a_fake_profiler(fp32_path):
    """UNVERIFIED against real TensorRT: the fake stands in for trt.IProfiler and an execution context
    that reports each layer once per run, as documented."""
    layers = {
        "Reformatting CopyNode for Input Tensor 0 to /stem/Conv + /Relu": 0.01,
        "/stem/Conv + /Relu": 0.2,
        "/dw/Conv": 0.1,
        "PWN(/Relu_1)": 0.05,
        "{ForeignNode[/pw/Conv.../fc/Gemm]}": 0.3,
        "/shuffle/Transpose + /pool/AveragePool + /fc/Gemm + /pw/Conv": 0.02,
    }
    context = types.SimpleNamespace(profiler=None)
    runs = []

    def run(x):
        runs.append(x.shape)
        for name, ms in layers.items():
            context.profiler.report_layer_time(name, ms * (1 + len(runs) % 2))  # odd runs twice as slow

    trt = types.SimpleNamespace(IProfiler=FakeIProfiler)
    runner = types.SimpleNamespace(trt=trt, context=context, image_shape=SIZE, run=run)
    layer_ms, wall_ms = time_layers(runner, runs=4, warmup=1)
    assert isinstance(context.profiler, FakeIProfiler) and context.profiler.base_init
    assert len(runs) == 5 and runs[0] == (1, *SIZE) and len(wall_ms) == 4
    assert layer_ms["/dw/Conv"] == pytest.approx([0.1, 0.2, 0.1, 0.2])  # warm-up run dropped

    result = engine_result("tiny.engine", fp32_path, layer_ms, wall_ms, runs=4)
    rows = by_node(result)
    assert result["backend"] == "tensorrt"
    assert rows["/stem/Conv"]["time_ms"] == pytest.approx(0.3) and rows["/Relu"]["note"] == "fused into /stem/Conv"
    assert rows["/Relu_1"]["time_ms"] == pytest.approx(0.075)  # a layer of one node without MACs
    assert "unmatched: inserted by TensorRT" in rows[next(n for n in rows if n.startswith("Reformatting"))]["note"]
    foreign = rows["{ForeignNode[/pw/Conv.../fc/Gemm]}"]
    assert foreign["note"] == "unmatched: one layer for a range of graph nodes: time not split"
    fused = rows["/shuffle/Transpose + /pool/AveragePool + /fc/Gemm + /pw/Conv"]
    assert fused["note"] == "unmatched: one layer for 2 graph nodes with MACs: time not split"
    assert result["unmatched_ms"] == pytest.approx(0.015 + 0.45 + 0.03)


def test_attach_keeps_exceptions_out_of_tensorrt():
    context = types.SimpleNamespace(profiler=None)
    times = attach(types.SimpleNamespace(IProfiler=FakeIProfiler), context)
    context.profiler.report_layer_time("a", "not a number")  # would raise inside the callback
    context.profiler.report_layer_time("a", 1.5)
    assert times.errors == 1 and times.per_layer() == {"a": [1.5]}


def test_attribute_trt_without_names_leaves_time_unmatched(fp32_path):
    """An engine built with profiling verbosity NONE reports layer indices: nothing to match."""
    got = attribute_trt([Kernel("0", "TensorRT layer", 1.0)], load_graph(fp32_path))
    assert not got.ms and [why for _, why in got.unmatched] == ["no graph node named in this layer"]


def test_profile_section_renders_rows_and_escapes_names():
    profile = {
        "file": "/runs/a/model<1>.onnx",
        "backend": "onnxruntime",
        "threads": 1,
        "runs": 5,
        "total_ms": 1.0,
        "measured_ms": 1.2,
        "unmatched_ms": 0.1,
        "rows": [
            {"node": "/dw/Conv", "op_type": "Conv", "time_ms": 0.6, "time_share": 0.6, "macs": 1000,
             "mac_share": 0.1, "params": 80, "bytes": 4000, "intensity": 0.25, "note": "", "matched": True},
            {"node": '<script>alert("x")</script>&', "op_type": "Mul", "time_ms": 0.3, "time_share": 0.3, "macs": 9000,
             "mac_share": 0.9, "params": 0, "bytes": 100, "intensity": 90.0, "note": "a<b", "matched": True},
            {"node": "ReorderOutput", "op_type": "ReorderOutput", "time_ms": 0.1, "time_share": 0.1, "macs": 0,
             "mac_share": 0.0, "params": 0, "bytes": 0, "intensity": None, "note": "unmatched: inserted",
             "matched": False},
        ],
    }  # fmt: skip
    html = profile_section_html(profile)
    assert "<script>" not in html and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in html
    assert "model&lt;1&gt;.onnx" in html and "a&lt;b" in html
    assert html.count("<tr>") == 1 + 3  # header and one per row
    assert "slow for its MACs" in html  # /dw/Conv: 60% of the time for 10% of the MACs
    assert 'style="height:6px;width:60.0%' in html and "width:10.0%" in html  # its two bars
    assert "0.1000 ms of kernel time ran in kernels with no graph node" in html
    short = profile_section_html(profile, top=1)
    assert short.count("<tr>") == 2 and "2 more rows: 40.0% of the time" in short
