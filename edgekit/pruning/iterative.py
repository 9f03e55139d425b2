"""Pruning in `steps` iterative steps (torch-pruning's `iterative_steps`, a linear schedule to the
final ratio) with a short seeded cross-entropy fine-tune of `finetune_batches` batches between steps,
so each step ranks channels of a network that has recovered from the previous cut."""

from __future__ import annotations

import copy

import torch
from torch import nn

from edgekit.accelerator import resolve_device
from edgekit.data.transforms import normalize, random_crop_flip
from edgekit.errors import EdgekitError
from edgekit.progress import Progress
from edgekit.pruning.importance import check_applicable, needs_gradients, taylor_gradients
from edgekit.pruning.pruner import build_pruner
from edgekit.seeding import seeded


def finetune(model: nn.Module, data, batches: int, batch_size: int, lr: float, seed: int, label: str) -> float:
    """`batches` AdamW steps of cross-entropy on seeded training batches (light crop/flip augmentation);
    returns the mean loss. The model ends in eval mode on the device it started on."""
    from edgekit.training import OptimConfig, make_optimizer

    if batches == 0:
        return float("nan")
    if data is None:
        raise EdgekitError(
            "prune.finetune_batches needs training data: run it through the pipeline or set prune.finetune_batches: 0"
        )
    device = resolve_device("auto")
    home = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(model, OptimConfig(lr=lr, weight_decay=0.0))
    loss_fn = nn.CrossEntropyLoss()
    n = len(data.train)
    bar = Progress(label, batches, unit="batch")
    total = 0.0
    model.to(device).train()
    try:
        for _ in range(batches):
            idx = torch.randint(0, n, (min(batch_size, n),), generator=gen)
            images = random_crop_flip(data.train.images[idx], 2, True, gen)
            x = normalize(images, data.mean, data.std).to(device)
            loss = loss_fn(model(x), data.train.labels[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            bar.update(1, loss=loss.item())
    finally:
        model.to(home).eval()
        model.zero_grad(set_to_none=True)
    return total / batches


def traced_pruner(model: nn.Module, cfg, ratio: float, input_size, steps: int):
    """build_pruner, whose dependency graph traces the model; a model it cannot trace is an EdgekitError
    naming the last layer the trace entered (where the untraceable operation is)."""
    entered: list[str] = []
    names = {m: n for n, m in model.named_modules() if n}
    hooks = [m.register_forward_pre_hook(lambda m, _: entered.append(names[m])) for m in names]
    try:
        return build_pruner(model, cfg, ratio, input_size, steps)
    except EdgekitError:
        raise
    except Exception as exc:  # torch-pruning's tracer raises whatever the model's forward raises
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        where = f"in or after layer {entered[-1]!r}" if entered else "before its first layer"
        raise EdgekitError(
            f"torch-pruning cannot trace {getattr(model, 'source', type(model).__name__)} {where} "
            f"({type(exc).__name__}: {first}): "
            "add that layer to ignored_layers, or express its operation with standard torch modules"
        ) from None
    finally:
        for hook in hooks:
            hook.remove()


def prune_copy(
    model: nn.Module,
    cfg,
    ratio: float,
    input_size,
    data=None,
    steps: int | None = None,
    finetune_batches: int | None = None,
    round_to: int | None = None,
) -> tuple[nn.Module, dict]:
    """Prune a copy of `model` to `ratio` with `cfg`'s criterion and scope in `steps` steps
    (default cfg.steps); `finetune_batches` and `round_to` override cfg's. Returns (model, info)."""
    steps = cfg.steps if steps is None else steps
    finetune_batches = cfg.finetune_batches if finetune_batches is None else finetune_batches
    if round_to is not None:
        cfg = copy.copy(cfg)
        cfg.round_to = round_to
    check_applicable(cfg.importance, model)
    model = copy.deepcopy(model).eval()
    losses = []
    with seeded(cfg.seed):  # random importance (and anything else drawing from torch's RNG) is reproducible
        pruner = traced_pruner(model, cfg, ratio, input_size, steps)
        for step in range(steps):
            if needs_gradients(cfg.importance):
                taylor_gradients(model, data, cfg.taylor_batches, cfg.batch_size, cfg.seed + step)
            pruner.step()
            model.zero_grad(set_to_none=True)
            if step < steps - 1 and finetune_batches > 0:
                losses.append(
                    round(
                        finetune(
                            model,
                            data,
                            finetune_batches,
                            cfg.batch_size,
                            cfg.finetune_lr,
                            cfg.seed + step,
                            f"prune step {step + 1}/{steps} fine-tune",
                        ),
                        4,
                    )
                )
    return model.eval(), {"finetune_losses": losses} if losses else {}
