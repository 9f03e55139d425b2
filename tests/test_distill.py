"""Distillation: feature KD through a learned adapter, a teacher chosen by name, device and mixed-precision
selection. Real (sliced) Fashion-MNIST, tiny models."""

import copy

import pytest
import torch

import edgekit
from edgekit import accelerator
from edgekit.artifact import Artifact, Role
from edgekit.checkpoint import read_state_dict, save_state_dict
from edgekit.distill import FeatureAdapter, kd_loss, load_teacher
from edgekit.errors import EdgekitError
from edgekit.recipe import Recipe, from_dict
from edgekit.stages import distill
from edgekit.stages.context import Context
from edgekit.training import OptimConfig, fit

SIZE = (1, 28, 28)


def lenet(seed=0, **kwargs):
    torch.manual_seed(seed)
    args = dict(num_classes=10, in_chans=1, small_input=True) | kwargs
    return edgekit.create_model("lenet5", **args).eval()


def quick(**kwargs) -> distill.Config:
    return distill.Config(
        **{"epochs": 3, "batch_size": 100, "lr": 3e-3, "feature_weight": 1.0, "augment_pad": 0, **kwargs}
    )


def calls(module: torch.nn.Module) -> list:
    seen = []
    module.register_forward_hook(lambda *a: seen.append(1))
    return seen


def test_feature_kd_trains_adapter_in_one_pass_and_lowers_feature_loss(fmnist_slice):
    teacher, student = lenet(0), lenet(1, width_mult=0.5)  # 120 vs 60 feature channels
    cfg = quick()
    objective = distill.objective_for(student, teacher, cfg, SIZE)
    adapter = objective.adapter
    assert adapter.proj.in_channels == 60 and adapter.proj.out_channels == 120
    before = copy.deepcopy(adapter.state_dict())
    teacher_c1, student_c1 = calls(teacher.c1), calls(student.c1)
    stats = fit(student, fmnist_slice, cfg, objective, "test", extra=adapter)
    steps = cfg.epochs * len(fmnist_slice.train) // cfg.batch_size
    # one forward per model per batch, and the student's one probe of the channels_last layout
    assert len(teacher_c1) == len(student_c1) - 1 == steps
    assert not torch.allclose(adapter.proj.weight, before["proj.weight"])  # the adapter was trained
    feature = objective.feature_stats(window=10)
    assert feature["feature_mse_end"] < 0.7 * feature["feature_mse_start"], feature
    assert stats["device"] == "cpu" and stats["precision"] == "fp32"
    # The adapter is not part of the student.
    adapter_params = {id(p) for p in adapter.parameters()}
    assert not adapter_params & {id(p) for p in student.parameters()}
    assert set(student.state_dict()) == set(lenet(width_mult=0.5).state_dict())


def test_feature_weight_zero_is_plain_logit_kd():
    teacher, student = lenet(0), lenet(1, width_mult=0.5)
    objective = distill.objective_for(student, teacher, quick(feature_weight=0.0), SIZE)
    assert objective.adapter is None
    x, y = torch.randn(4, *SIZE), torch.randint(0, 10, (4,))
    assert torch.allclose(objective(student, x, y), kd_loss(student(x), teacher(x), y, 4.0, 0.7))


def test_adapter_resizes_to_a_different_teacher_layout():
    """A MobileNetV3 teacher ends on 2x2 maps, LeNet on 1x1: the adapter resizes and gets gradients."""
    torch.manual_seed(0)
    teacher = edgekit.create_model(
        "mobilenet_v3_small", num_classes=10, in_chans=1, small_input=True, width_mult=0.5
    ).eval()
    student = lenet(1).train()
    objective = distill.objective_for(student, teacher, quick(), SIZE)
    x, y = torch.randn(4, *SIZE), torch.randint(0, 10, (4,))
    objective(student, x, y).backward()
    assert objective.adapter.proj.weight.grad.abs().sum() > 0
    assert FeatureAdapter(8, 16)(torch.randn(2, 8), (3, 3)).shape == (2, 16, 3, 3)
    with pytest.raises(EdgekitError, match="3-D tensor"):
        FeatureAdapter(8, 16)(torch.randn(2, 8, 5), (3, 3))


def _stage(tmp_path, data, teacher, student, cfg):
    art = Artifact(tmp_path)
    art.add(Role.BASELINE, tmp_path / "b.pt", 0, 0, module=teacher)
    art.add(Role.PRUNED, tmp_path / "p.pt", 0, 0, module=student, source=Role.BASELINE)
    return art, distill.run(art, cfg, Context(Recipe(), data, tmp_path))


def test_stage_saves_the_student_alone(tmp_path, fmnist_slice):
    student = lenet(1, width_mult=0.5)
    art, metrics = _stage(tmp_path, fmnist_slice, lenet(0), student, quick(epochs=1))
    assert metrics["mode"] == "kd+features" and metrics["teacher"] == "baseline"
    assert metrics["feature_mse_end"] < metrics["feature_mse_start"]
    saved = read_state_dict(tmp_path / "distilled.pt")
    assert set(saved) == set(student.state_dict())  # no adapter keys in the deliverable
    assert not any(k.startswith("proj") for k in saved)
    assert set(art[Role.DISTILLED].module.state_dict()) == set(saved)


def test_training_runs_in_channels_last_and_leaves_every_module_in_the_default_layout(tmp_path, fmnist_slice):
    """fit trains (and the distill stage runs the teacher) in channels_last (checked on convolutions with
    more than one input channel: with one, both layouts have the same strides), the faster layout for oneDNN's
    convolutions; afterwards the student, the teacher and the saved weights are back in the default layout
    that export, pruning and other tools expect."""
    teacher, student = lenet(0), lenet(1, width_mult=0.5)
    seen = []
    first_conv = next(m for m in student.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    first_conv.register_forward_hook(
        lambda m, i, o: seen.append(m.weight.is_contiguous(memory_format=torch.channels_last))
    )
    teacher_conv = next(m for m in teacher.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    teacher_conv.register_forward_hook(
        lambda m, i, o: seen.append(m.weight.is_contiguous(memory_format=torch.channels_last))
    )
    art, _ = _stage(tmp_path, fmnist_slice, teacher, student, quick(epochs=1, feature_weight=0.0))
    assert seen and all(seen)  # every forward pass of training, the teacher's included, in channels_last
    for module in (art[Role.DISTILLED].module, teacher):
        assert all(p.is_contiguous() for p in module.parameters())
    assert all(t.is_contiguous() for t in read_state_dict(tmp_path / "distilled.pt").values())


@pytest.fixture
def ctx(tmp_path, fmnist_slice):
    return Context(Recipe(), fmnist_slice, tmp_path)


def test_teacher_by_name_loads_its_weights(tmp_path, fmnist_slice, ctx):
    trained = lenet(7, width_mult=0.5)
    save_state_dict(trained, tmp_path / "teacher.pt")
    teacher = load_teacher("lenet", str(tmp_path / "teacher.pt"), {"width_mult": 0.5}, SIZE, 10)
    for key, value in trained.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value), key
    cfg = quick(
        epochs=1, teacher="lenet5", teacher_weights=str(tmp_path / "teacher.pt"), teacher_options={"width_mult": 0.5}
    )
    _, metrics = _stage(tmp_path, fmnist_slice, lenet(0), lenet(1, width_mult=0.5), cfg)
    assert metrics["teacher"] == "lenet5"


def test_teacher_without_weights_is_an_error():
    with pytest.raises(EdgekitError, match=r"a teacher needs trained weights: give distill\.teacher_weights"):
        from_dict({"distill": {"teacher": "resnet18"}}, "r.yaml")
    with pytest.raises(EdgekitError, match=r"distill\.teacher is not"):
        distill.Config(teacher_weights="t.pt")
    with pytest.raises(EdgekitError, match=r"distill\.teacher: unknown model"):
        distill.Config(teacher="resnt18", teacher_weights="t.pt")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_classes": 5}, "has 5 classes but the data has 10"),
        ({"in_chans": 3}, "takes 3-channel input but the data has 1 channels"),
    ],
)
def test_teacher_with_other_classes_or_channels_is_an_error(tmp_path, ctx, kwargs, message):
    save_state_dict(lenet(**kwargs), tmp_path / "t.pt")
    with pytest.raises(EdgekitError, match=message):
        load_teacher("lenet5", str(tmp_path / "t.pt"), {}, SIZE, 10)


def test_missing_teacher_file_is_an_error(tmp_path, ctx):
    with pytest.raises(EdgekitError, match=r"does not exist: check distill\.teacher_weights"):
        load_teacher("lenet5", str(tmp_path / "nope.pt"), {}, SIZE, 10)


@pytest.mark.parametrize(
    "mode,device,bf16,expected",
    [
        ("auto", "cpu", True, None),
        ("bf16", "cpu", True, None),
        ("fp16", "cpu", True, None),
        ("off", "cuda", True, None),
        ("auto", "cuda", True, torch.bfloat16),
        ("auto", "cuda", False, torch.float16),
        ("bf16", "cuda", True, torch.bfloat16),
        ("fp16", "cuda", True, torch.float16),
    ],
)
def test_amp_dtype_selection(mode, device, bf16, expected):
    assert accelerator.amp_dtype(mode, device, bf16_supported=bf16) is expected


def test_amp_bf16_on_a_gpu_without_it_is_an_error():
    with pytest.raises(EdgekitError, match="does not support bfloat16"):
        accelerator.amp_dtype("bf16", "cuda", bf16_supported=False)
    assert accelerator.grad_scaler(torch.device("cuda"), torch.bfloat16) is None  # loss scaling is fp16 only
    assert accelerator.grad_scaler(torch.device("cpu"), None) is None


def test_device_resolution(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert accelerator.resolve_device("auto").type == "cpu"
    with pytest.raises(EdgekitError, match="sees no CUDA GPU"):
        accelerator.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert accelerator.resolve_device("auto").type == "cuda"
    assert accelerator.resolve_device("cpu").type == "cpu"


def _train_lenet(data, **cfg):
    model = lenet(3)
    loss = lambda m, x, y: torch.nn.functional.cross_entropy(m(x), y)  # noqa: E731
    stats = fit(model, data, OptimConfig(epochs=1, batch_size=250, **cfg), loss, "test")
    return model, stats


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU path")
def test_cpu_training_ignores_amp(fmnist_slice):
    reference, _ = _train_lenet(fmnist_slice, amp="off", device="cpu")
    for settings in ({"amp": "bf16"}, {"amp": "auto", "device": "auto"}):
        model, stats = _train_lenet(fmnist_slice, **settings)
        assert stats["precision"] == "fp32" and stats["device"] == "cpu"
        for key, value in reference.state_dict().items():
            assert torch.equal(model.state_dict()[key], value), (settings, key)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["auto", "fp16", "off"])
def test_cuda_training_with_amp(fmnist_slice, amp):
    model, stats = _train_lenet(fmnist_slice, amp=amp, device="cuda")
    assert stats["device"] == "cuda" and stats["final_loss"] == stats["final_loss"]  # not NaN
    assert (
        stats["precision"]
        == {"auto": "bf16" if torch.cuda.is_bf16_supported() else "fp16", "fp16": "fp16", "off": "fp32"}[amp]
    )
    assert next(model.parameters()).device.type == "cpu"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_feature_distillation_returns_models_to_cpu(tmp_path, fmnist_slice):
    art, metrics = _stage(tmp_path, fmnist_slice, lenet(0), lenet(1, width_mult=0.5), quick(epochs=1, device="cuda"))
    assert metrics["device"] == "cuda" and metrics["feature_mse_end"] < metrics["feature_mse_start"]
    for name in ("baseline", "distilled"):
        assert next(art[name].module.parameters()).device.type == "cpu"


def test_check_inputs_finds_a_missing_teacher_file_before_the_run(tmp_path):
    distill.check_inputs(distill.Config())  # the baseline teacher needs nothing
    with pytest.raises(EdgekitError, match="does not exist"):
        distill.check_inputs(distill.Config(teacher="lenet5", teacher_weights=str(tmp_path / "nope.pt")))
