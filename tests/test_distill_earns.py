"""Distillation has to earn its place: at equal steps a pruned student learns more from its unpruned
teacher than from the labels alone. Also the KD alpha schedule and the BatchNorm recalibration after
training. Real (sliced) Fashion-MNIST, MobileNetV3 with the small-input stem."""

import copy
import dataclasses
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import edgekit
from edgekit.stages import distill
from edgekit.training import OptimConfig, fit, predict

SIZE = (1, 28, 28)


def top1(model, data) -> float:
    return (predict(model.eval(), data.val, data).argmax(1) == data.val.labels).float().mean().item()


@pytest.fixture(scope="module")
def data():
    from edgekit.data import DataConfig, load_data

    return load_data(DataConfig(root=str(Path(__file__).parent / "data" / "fashion-mnist")))


@pytest.fixture(scope="module")
def teacher(data):
    """A MobileNetV3 (the demo's model, small-input stem) trained on the slice: the teacher and the
    model that gets pruned."""
    torch.manual_seed(0)
    model = edgekit.create_model("mobilenet_v3", num_classes=10, in_chans=1, small_input=True)
    loss = lambda m, x, y: F.cross_entropy(m(x), y, label_smoothing=0.1)  # noqa: E731
    fit(model, data, OptimConfig(epochs=8, batch_size=64, lr=3e-3), loss, "teacher")
    return model.eval()


def recovered(student, teacher, data, seed: int, **settings) -> float:
    cfg = distill.Config(**{"epochs": 2, "batch_size": 64, "seed": seed, **settings})
    student = copy.deepcopy(student)
    objective = distill.objective_for(student, teacher if cfg.enabled else None, cfg, SIZE, len(data.train))
    fit(student, data, cfg, objective, "recover", extra=objective.adapter)
    return top1(student, data)


def test_a_teacher_beats_no_teacher_at_equal_steps(data, teacher):
    """The pruned student recovers on 150 labelled images: with the teacher's soft targets it learns what
    the labels alone cannot tell it. Paired by seed (same student, same batches): KD wins on every seed.
    Measured on a 2-core AVX2 CPU: KD 66.8/64.6/70.2% vs cross-entropy 62.8/63.2/65.6%. With 300 images
    the two tied there (72.6 vs 72.5% over 3 seeds; an AVX-512 machine had shown KD ahead), and on the
    whole split the gap is about a point (bench/ablation.py): the teacher pays most where labels are few."""
    few = dataclasses.replace(data, train=data.train.subset(torch.arange(150)))
    pruned = edgekit.prune(teacher, 0.3, SIZE)
    seeds = (0, 1, 2)
    kd = [recovered(pruned, teacher, few, seed, epochs=6) for seed in seeds]
    ce = [recovered(pruned, teacher, few, seed, epochs=6, enabled=False) for seed in seeds]
    print(f"kd {kd} ce {ce} teacher {top1(teacher, data):.3f}")
    assert all(k > c for k, c in zip(kd, ce, strict=True)), (kd, ce)
    assert statistics.fmean(kd) - statistics.fmean(ce) > 0.02, (kd, ce)


def test_the_alpha_schedule_moves_from_alpha_to_alpha_end_over_the_training_steps():
    model = edgekit.create_model("lenet5", num_classes=10, in_chans=1, small_input=True)
    cfg = distill.Config(epochs=2, batch_size=50, alpha=1.0, alpha_end=0.2)
    objective = distill.objective_for(model, copy.deepcopy(model), cfg, SIZE, train_images=100)  # 4 steps
    x, y = torch.randn(2, *SIZE), torch.tensor([0, 1])
    seen = []
    for _ in range(5):
        seen.append(round(objective.alpha_now(), 3))
        objective(model.train(), x, y)
    assert seen == [1.0, 0.8, 0.6, 0.4, 0.2]
    objective(model.eval(), x, y)  # evaluation calls do not advance the schedule
    assert objective.steps == 5
    assert distill.objective_for(model, None, cfg, SIZE, 100).alpha_now() == 0.0  # no teacher: cross-entropy


def test_batchnorm_statistics_are_recalibrated_after_training(data):
    """After a short run with BN momentum 0.01 (MobileNetV3's), the running averages still hold their
    initial values; fit replaces them with the exact statistics of the final weights."""
    from edgekit.data.transforms import normalize
    from edgekit.training import recalibrate_bn

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4, momentum=0.01))
    assert recalibrate_bn(model, data, 300, 100, seed=0) == 1
    bn = model[1]
    assert not model.training and bn.momentum == 0.01
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(0))[:300]
    with torch.no_grad():
        out = model[0](normalize(data.train.images[order], data.mean, data.std))
    assert torch.allclose(bn.running_mean, out.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(bn.running_var, out.var((0, 2, 3)), rtol=1e-2)

    short = edgekit.create_model("mobilenet_v3", num_classes=10, in_chans=1, small_input=True)
    loss = lambda m, x, y: F.cross_entropy(m(x), y)  # noqa: E731
    stale = copy.deepcopy(short)
    fit(stale, data, OptimConfig(epochs=1, batch_size=64, bn_recalibrate=0), loss, "stale")
    stats = fit(short, data, OptimConfig(epochs=1, batch_size=64), loss, "recalibrated")
    assert stats["bn_recalibrated_images"] == min(2048, len(data.train)) and stats["bn_recalibrated_layers"] > 30
    assert top1(short, data) > top1(stale, data) + 0.2, (top1(short, data), top1(stale, data))
