"""The Python API: a user's own nn.Module and tensors through the whole pipeline, each stage on its own,
and bad input as one EdgekitError. Real (sliced) Fashion-MNIST, a small custom CNN."""

import json

import onnx
import pytest
import torch
from torch import nn

import edgekit
from conftest import SLICE
from edgekit.backends.ort import OrtRunner
from edgekit.data import DataConfig, load_data
from edgekit.data.transforms import normalize
from edgekit.errors import EdgekitError

QUICK = {
    "validate.min_seconds": 0.05,
    "validate.min_runs": 5,
    "validate.warmup_s": 0,
    "validate.rounds": 1,
    "quantize.calib_images": 64,
    "quantize.sensitivity_images": 200,
}


class PlainNet(nn.Module):
    """Not a zoo model: no BatchNorm, plain Sequential blocks, a `view`-flatten head."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.hidden = nn.Linear(32 * 7 * 7, 64)
        self.act = nn.ReLU()
        self.out = nn.Linear(64, classes)

    def forward(self, x):
        x = self.features(x)
        return self.out(self.act(self.hidden(x.view(x.size(0), -1))))


@pytest.fixture(scope="module")
def tensors():
    """The slice as float tensors, normalized by the user: the model's input contract."""
    data = load_data(DataConfig(root=str(SLICE)))
    x_train = normalize(data.train.images, data.mean, data.std)
    x_val = normalize(data.val.images, data.mean, data.std)
    return (x_train, data.train.labels), (x_val, data.val.labels)


@pytest.fixture(scope="module")
def custom_run(tensors, tmp_path_factory):
    torch.manual_seed(0)
    settings = {**QUICK, "train.finetune_given": True, "train.epochs": 6, "distill.epochs": 4}
    settings["gate.max_drop"] = 2.0  # 1,500 training images: a 2-point allowance for every deliverable
    out = tmp_path_factory.mktemp("api")
    return edgekit.compress(PlainNet(), *tensors, prune=0.3, int8=True, output=out, settings=settings)


def test_a_custom_module_goes_through_every_stage(custom_run, tensors):
    run = custom_run
    stages = {s["name"]: s for s in run.report["stages"]}
    for name in ("train", "prune", "distill", "export", "quantize", "validate"):
        assert "skipped" not in stages[name]["metrics"], (name, stages[name]["metrics"])
    rows = {r["artifact"]: r for r in run.report["results"]}
    assert rows["model.onnx"]["params"] < 0.7 * rows["baseline"]["params"]
    assert rows["baseline"]["top1"] > 0.6  # it learned real data
    for name in ("distilled", "model.onnx", "model.int8.onnx"):
        drop = round((rows["baseline"]["top1"] - rows[name]["top1"]) * 100, 6)
        assert drop <= run.report["max_drop"], (name, rows[name]["top1"])
    assert run.report["model"] == "python:PlainNet" and run.report["data"]["name"] == "python"
    assert run.ship is not None and run.ship.is_file() and run.ship.parent == run.run_dir


def test_the_exported_model_takes_the_users_tensors_as_they_are(custom_run, tensors):
    """Float tensors are the input contract: no renormalising, so the ONNX file scores the same on them."""
    (x_val, y_val) = tensors[1]
    onnx_file = custom_run.run_dir / "model.onnx"
    logits = OrtRunner(onnx_file, 1).run(x_val.numpy())
    rows = {r["artifact"]: r for r in custom_run.report["results"]}
    assert float((logits.argmax(1) == y_val.numpy()).mean()) == pytest.approx(rows["model.onnx"]["top1"], abs=1e-4)
    meta = {p.key: p.value for p in onnx.load(str(onnx_file)).metadata_props}
    assert json.loads(meta["normalization"]) == {"mean": [0.0], "std": [1.0], "scale": "1"}


def test_a_data_loader_gives_the_same_data_as_arrays(tensors):
    from torch.utils.data import DataLoader, TensorDataset

    from edgekit.data.from_user import dataset_from

    (x, y), (xv, yv) = tensors
    a = dataset_from((x, y), (xv, yv))
    b = dataset_from(DataLoader(TensorDataset(x, y), batch_size=100), TensorDataset(xv, yv))
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.val.labels, b.val.labels)
    assert a.classes == [str(i) for i in range(10)] and a.mean == (0.0,) and a.pixel_scale == "1"


def test_a_module_with_another_class_count_is_fitted_and_fine_tuned(tensors, tmp_path):
    torch.manual_seed(1)
    settings = {**QUICK, "train.epochs": 1, "train.freeze_backbone_epochs": 0.5, "train.backbone_lr_scale": 0.1}
    run = edgekit.compress(PlainNet(classes=1000), *tensors, output=tmp_path, settings=settings)
    stages = {s["name"]: s["metrics"] for s in run.report["stages"]}
    assert stages["load"]["transfer"] == {"classifier": "net.out", "checkpoint_classes": 1000, "classes": 10}
    assert "skipped" not in stages["train"]
    assert any("re-initialised" in n for n in run.report["notes"])


def test_each_stage_on_its_own(tensors, tmp_path):
    (x, y), (xv, yv) = tensors
    torch.manual_seed(0)
    model = PlainNet().eval()
    pruned = edgekit.prune(model, 0.5, (1, 28, 28), round_to=1)
    assert pruned.out.out_features == 10 and pruned.features[0].out_channels == 8  # the classifier kept whole
    tuned = edgekit.distill_student(pruned, model, (x[:512], y[:512]), epochs=1, batch_size=128)
    assert isinstance(tuned, PlainNet)
    path = edgekit.export_onnx(tuned, tmp_path / "m.onnx", (1, 28, 28))
    int8 = edgekit.quantize_onnx(path, x[:64])
    assert int8.name == "m.int8.onnx" and "QuantizeLinear" in {n.op_type for n in onnx.load(str(int8)).graph.node}
    torch_acc = edgekit.evaluate(tuned, xv, yv)
    onnx_acc = edgekit.evaluate(path, xv, yv)
    assert torch_acc["top1"] == pytest.approx(onnx_acc["top1"], abs=0.004)
    figures = edgekit.benchmark(int8, (1, 28, 28), seconds=0.05)
    assert figures["latency_ms"]["p50"] > 0 and figures["throughput_ips"] > 0


class WrongOutput(nn.Module):
    def forward(self, x):
        return x.mean((2, 3))  # (N, 1): not one logit per class


@pytest.mark.parametrize(
    "make,message",
    [
        (
            lambda t: (WrongOutput(), t, None),
            "returns (2, 1) for a batch of 2, but edgekit needs logits of shape (N, 10)",
        ),
        (
            lambda t: (PlainNet(), t[0], (t[1][0], t[1][1] + 20)),
            "validation labels include 29, outside the 10 classes 0..9",
        ),
        (lambda t: (PlainNet(), ((t[0][0][:50], torch.zeros(50, dtype=torch.long))), None), "has one class"),
        (lambda t: (PlainNet(), [(torch.zeros(1, 28, 28), 0), (torch.zeros(1, 32, 32), 1)], None), "mixed shapes"),
        (lambda t: (PlainNet(), ((t[0][0], t[0][1].float())), None), "give integer class indices"),
        (lambda t: (42, t[0], None), "give an nn.Module or a zoo model name"),
        (lambda t: (PlainNet(), None, t[1]), "val is given without train"),
    ],
    ids=["output-shape", "label-range", "one-class", "mixed-shapes", "float-labels", "not-a-model", "val-only"],
)
def test_bad_input_is_one_edgekit_error(tensors, tmp_path, make, message):
    model, train, val = make(tensors)
    with pytest.raises(EdgekitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        edgekit.compress(model, train, val, output=tmp_path, settings=QUICK)
    assert not any(tmp_path.iterdir()) or all(p.is_dir() for p in tmp_path.iterdir())


def test_a_recipe_naming_a_python_model_says_how_to_rerun_it(custom_run):
    from edgekit.recipe import load_recipe

    with pytest.raises(EdgekitError, match="was given from Python and cannot be rebuilt from a recipe"):
        edgekit.run_recipe(load_recipe(custom_run.run_dir / "recipe.yaml"))


def test_output_goes_through_the_edgekit_logger(tensors, tmp_path, capsys):
    import logging

    logger = logging.getLogger("edgekit")
    before = logger.level
    logger.setLevel(logging.WARNING)
    try:
        edgekit.compress(PlainNet(), *tensors, output=tmp_path, settings={**QUICK, "train.epochs": 0})
    finally:
        logger.setLevel(before)
    out = capsys.readouterr()
    assert "== validate" not in out.out and "validate " not in out.err  # silenced: no lines, no progress


class Untraceable(nn.Module):
    def forward(self, x):
        raise RuntimeError("an operation the tracer cannot follow")


def test_a_model_pruning_cannot_trace_names_the_layer():
    model = nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), Untraceable(), nn.Flatten(), nn.Linear(8, 10))
    message = r"cannot trace python:Sequential in or after layer 'net\.2'.*ignored_layers"
    with pytest.raises(EdgekitError, match=message):
        edgekit.prune(model, 0.3, (1, 28, 28), num_classes=10)


def test_export_checks_parity_of_a_module_whose_output_is_not_two_dimensional(tmp_path):
    """A feature extractor (N, C, H, W output) exports with its parity measured, not a crash."""
    torch.manual_seed(0)
    path = edgekit.export_onnx(nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU()), tmp_path / "f.onnx", (3, 8, 8))
    x = torch.randn(2, 3, 8, 8).numpy()
    assert OrtRunner(path, threads=1).run(x).shape == (2, 8, 8, 8)
