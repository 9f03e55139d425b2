"""The KD teacher's logits, cached per view of a training image: the same loss as running the teacher
on every batch, with the teacher run once per view; shared by a later fit only while the teacher's
weights and the split are unchanged; bypassed where random crops make every view new."""

import copy

import pytest
import torch

import edgekit
from edgekit.data.transforms import augment, view_keys
from edgekit.distill.teacher_logits import TeacherLogits, shared
from edgekit.stages import distill
from edgekit.training import fit

SIZE = (1, 28, 28)


def lenet(seed: int, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)
    return edgekit.create_model("lenet5", num_classes=10, in_chans=1, small_input=True, **kwargs).eval()


def counted(module: torch.nn.Module) -> list[int]:
    """Images through `module`'s forward, one entry per call."""
    seen: list[int] = []
    module.register_forward_hook(lambda m, args, out: seen.append(len(args[0])))
    return seen


def kd_config(**kwargs) -> distill.Config:
    return distill.Config(**{"epochs": 3, "batch_size": 50, "lr": 3e-3, "augment_pad": 0, "alpha_end": None, **kwargs})


def test_views_are_keyed_by_index_and_flip():
    images = torch.arange(4 * 2 * 3, dtype=torch.uint8).view(4, 1, 2, 3)
    out, flipped = augment(images, 0, True, torch.Generator().manual_seed(1))
    assert flipped is not None and 0 < int(flipped.sum()) < 4  # this seed flips some, not all
    for i in range(4):
        assert torch.equal(out[i], images[i].flip(-1) if flipped[i] else images[i])
    keys = view_keys(torch.tensor([7, 2, 0, 5]), flipped)
    assert keys.tolist() == [2 * j + int(f) for j, f in zip([7, 2, 0, 5], flipped.tolist(), strict=True)]
    assert view_keys(torch.tensor([3]), None).tolist() == [6]
    assert augment(images, 0, False, torch.Generator())[1] is None


def test_cached_logits_equal_the_teachers_and_only_misses_run_it():
    teacher = lenet(0)
    images = torch.randn(6, 1, 28, 28)
    cache = TeacherLogits(teacher, torch.zeros(6, 1, 28, 28, dtype=torch.uint8))
    runs = counted(teacher)
    with torch.no_grad():
        first, computed = cache(teacher, images[:4], torch.tensor([0, 2, 4, 6]))
        assert computed == 4 and runs == [4]
        mixed = torch.cat([images[2:4], images[4:6]])  # two views seen, two new
        out, computed = cache(teacher, mixed, torch.tensor([4, 6, 8, 10]))
        assert computed == 2 and runs == [4, 2]  # only the two new views went through the teacher
        assert torch.allclose(out, teacher(mixed), atol=1e-5)
        again, computed = cache(teacher, images[:2], torch.tensor([0, 2]))
        assert computed == 0 and torch.allclose(again, first[:2])


def test_a_kd_fit_gives_the_same_student_with_fewer_teacher_passes(fmnist_slice):
    teacher, student = lenet(0), lenet(1, width_mult=0.5)
    cfg = kd_config()
    n = len(fmnist_slice.train)
    results = {}
    for cached in (False, True):
        model = copy.deepcopy(student)
        images = fmnist_slice.train.images if cached else None
        objective = distill.objective_for(model, copy.deepcopy(teacher), cfg, SIZE, n, images)
        runs = counted(objective.teacher)
        stats = fit(model, fmnist_slice, cfg, objective, "kd")
        results[cached] = (model, stats, sum(runs), objective.teacher_stats())
    plain, cached = results[False], results[True]
    assert plain[2] == 3 * n and plain[3] == {"teacher_images": 3 * n, "teacher_logits_reused": 0}
    # Each image has two views: over 3 epochs the teacher ran on at most 2n of the 3n images, and the cache
    # supplied the rest.
    assert n < cached[2] <= 2 * n and cached[3]["teacher_images"] == cached[2]
    assert cached[3]["teacher_images"] + cached[3]["teacher_logits_reused"] == 3 * n
    assert cached[1]["final_loss"] == pytest.approx(plain[1]["final_loss"], abs=1e-3)
    for a, b in zip(plain[0].parameters(), cached[0].parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-3)


def test_a_cache_over_its_memory_bound_runs_the_teacher_every_time():
    teacher = lenet(0)
    cache = TeacherLogits(teacher, torch.zeros(6, 1, 28, 28, dtype=torch.uint8), max_bytes=12 * 10 * 4 - 1)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        assert cache(teacher, x, torch.tensor([0, 2]))[1] == 2
        out, computed = cache(teacher, x, torch.tensor([0, 2]))  # the same views again: not stored
    assert cache.disabled and cache.values is None and computed == 2
    assert torch.allclose(out, teacher(x), atol=1e-5)


def test_a_pickled_cache_starts_empty_and_works_in_another_process():
    """A distributed fit pickles its loss for the other ranks: each gets an empty cache for its shard."""
    import pickle

    teacher = lenet(0)
    cache = TeacherLogits(teacher, torch.zeros(4, 1, 28, 28, dtype=torch.uint8))
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        cache(teacher, x, torch.tensor([0, 3]))
        copy_ = pickle.loads(pickle.dumps(cache))
        assert copy_.values is None and not copy_.filled.any() and not copy_.valid_for(teacher, torch.zeros(1))
        out, computed = copy_(teacher, x, torch.tensor([0, 3]))
    assert computed == 2 and torch.allclose(out, teacher(x), atol=1e-5)


def test_the_cache_is_shared_while_the_teacher_and_split_are_unchanged(fmnist_slice):
    teacher = lenet(0)
    images = fmnist_slice.train.images
    first = shared(teacher, images)
    assert shared(teacher, images) is first
    assert shared(teacher, images.clone()) is not first  # another split
    renewed = shared(teacher, images)
    with torch.no_grad():
        next(teacher.parameters()).add_(0.01)  # the teacher changed: its old logits are stale
    assert shared(teacher, images) is not renewed


def test_random_crops_and_feature_kd_bypass_the_cache(fmnist_slice):
    teacher, student = lenet(0), lenet(1, width_mult=0.5)
    n = len(fmnist_slice.train)
    for settings in ({"augment_pad": 2}, {"feature_weight": 1.0}):
        cfg = kd_config(epochs=2, **settings)
        model = copy.deepcopy(student)
        objective = distill.objective_for(model, teacher, cfg, SIZE, n, fmnist_slice.train.images)
        runs = counted(teacher.c1)  # feature KD calls forward_features, not forward
        fit(model, fmnist_slice, cfg, objective, "kd", extra=objective.adapter)
        assert sum(runs) == 2 * n, settings  # every image of every epoch went through the teacher
        teacher.c1._forward_hooks.clear()
