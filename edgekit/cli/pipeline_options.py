"""The options `compress` and `run` share. Each sets one recipe key (a flag given overrides the recipe, a
flag left out leaves it alone), so the table below is the whole mapping from the command line to a Recipe.
Booleans come in pairs (`--int8/--no-int8`): a recipe may turn a stage on that a flag turns off again."""

from enum import Enum
from typing import Annotated, Any

import typer

from edgekit.cli.choices import Calibration, Importance, Mode, Platform
from edgekit.cli.signature import with_options
from edgekit.errors import EdgekitError

MODEL, DATA, PRUNING, DISTILL, QUANT, TARGET, RUN = (
    "Model",
    "Data",
    "Pruning",
    "Distillation",
    "Quantization",
    "Target",
    "Run",
)


def parse_ratio(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise EdgekitError(f"--prune {text!r} is not a number: give a fraction in [0, 1), e.g. 0.3") from None
    if not 0 <= value < 1:
        raise EdgekitError(f"--prune {value} is outside [0, 1): give the fraction of channels to remove, e.g. 0.3")
    return value


def option(*names: str, panel: str, help: str, **kw: Any) -> Any:
    return typer.Option(*names, rich_help_panel=panel, help=help, show_default=False, **kw)


# (parameter, recipe key or None, annotation). None: the command handles it (resume, --set, output form).
OPTIONS: list[tuple[str, str | None, Any]] = [
    ("weights", "model.weights", Annotated[str | None, option("--weights", panel=MODEL, metavar="FILE",
        help="state_dict checkpoint to start from instead of training a baseline")]),
    ("epochs", "train.epochs", Annotated[int | None, option("--epochs", panel=MODEL, metavar="N",
        help="baseline training epochs (train.epochs)")]),
    ("baseline_cache", "train.cache", Annotated[bool | None, option("--baseline-cache/--no-baseline-cache",
        panel=MODEL, help="reuse a baseline trained earlier with identical settings (train.cache, default on)")]),
    ("data", "data.name", Annotated[str | None, option("--data", panel=DATA, metavar="NAME|FOLDER",
        help="built-in data set (fashion_mnist) or an image folder (one subfolder per class)")]),
    ("strict_data", "data.strict", Annotated[bool | None, option("--strict-data/--no-strict-data", panel=DATA,
        help="refuse an image folder with unreadable images (default: skip them with a warning and count them)")]),
    ("prune", "prune.ratio", Annotated[str | None, option("--prune", panel=PRUNING, metavar="RATIO",
        help="fraction of channels removed from every prunable layer, in [0, 1); 0.3 keeps 70% of each layer and "
        "cuts MACs by about half")]),
    ("importance", "prune.importance", Annotated[Importance | None, option("--importance", panel=PRUNING,
        help="pruning criterion (default l2)")]),
    ("target_macs", "prune.target_macs", Annotated[float | None, option("--target-macs", panel=PRUNING,
        metavar="FRACTION", help="instead of --prune: search the ratio that keeps at most this fraction of the "
        "baseline MACs, e.g. 0.5")]),
    ("target_latency_ms", "prune.target_latency_ms", Annotated[float | None, option("--target-latency-ms",
        panel=PRUNING, metavar="MS", help="instead of --prune: search the ratio whose ONNX Runtime CPU p50 (batch 1, "
        "1 thread) is at most MS")]),
    ("prune_steps", "prune.steps", Annotated[int | None, option("--prune-steps", panel=PRUNING, metavar="N",
        help="prune in N steps with a short fine-tune between them (default 1)")]),
    ("global_prune", "prune.scope", Annotated[bool | None, option("--global-prune/--uniform-prune", panel=PRUNING,
        help="rank channels across layers (prune.scope global) or remove the same ratio from every layer "
        "(uniform, the default)")]),
    ("distill", "distill.enabled", Annotated[bool | None, option("--distill/--no-distill", panel=DISTILL,
        help="recover accuracy after pruning by knowledge distillation from the unpruned model (default), or "
        "fine-tune with cross-entropy only")]),
    ("distill_epochs", "distill.epochs", Annotated[int | None, option("--distill-epochs", panel=DISTILL, metavar="N",
        help="distillation (or fine-tuning) epochs after pruning")]),
    ("rewrite", "rewrite.mode", Annotated[Mode | None, option("--rewrite", panel=DISTILL,
        help="deployment rewrite candidate (HardSwish/SiLU -> ReLU, SE removed, distilled from the baseline): "
        "auto (in --int8 runs of models it changes), off or on")]),
    ("int8", "quantize.enabled", Annotated[bool | None, option("--int8/--no-int8", panel=QUANT,
        help="also produce an int8 Q/DQ ONNX model")]),
    ("calibration", "quantize.calibration", Annotated[Calibration | None, option("--calibration", panel=QUANT,
        help="int8 calibration method")]),
    ("qat", "qat.mode", Annotated[Mode | None, option("--qat", panel=QUANT,
        help="quantization-aware fine-tuning: auto (when mixed precision cannot meet --max-drop), off or on")]),
    ("fp16", "export.fp16", Annotated[bool | None, option("--fp16/--no-fp16", panel=QUANT,
        help="also write model.fp16.onnx (fp16 inside, fp32 input/output; for GPU targets)")]),
    ("target", "target.platform", Annotated[Platform | None, option("--target", panel=TARGET,
        help="where the model runs: cpu (U8-activation int8 for ONNX Runtime), openvino (the same files; OpenVINO's "
        "timings decide what ships) or tensorrt / jetson (symmetric S8 Q/DQ int8, and TensorRT engines built on "
        "this machine when TensorRT and a GPU are here)")]),
    ("threads", "validate.threads", Annotated[int | None, option("--threads", panel=TARGET, metavar="N",
        help="intra-op CPU threads for the validation runners (default 1; 0 = all cores)")]),
    ("max_drop", "gate.max_drop", Annotated[float | None, option("--max-drop", panel=RUN, metavar="POINTS",
        help="allowed top-1 drop in points (default 1.0): the int8 target and, with this flag, the accuracy gate of "
        "every deliverable against the baseline; a stage past it fails and later stages do not run")]),
    ("keep_going", "gate.keep_going", Annotated[bool | None, option("--keep-going/--no-keep-going", panel=RUN,
        help="run later stages after a failed accuracy gate")]),
    ("output", "run.output", Annotated[str | None, option("--output", panel=RUN, metavar="DIR",
        help="folder that receives the run folder (default: artifacts)")]),
    ("run_dir", "run.dir", Annotated[str | None, option("--run-dir", panel=RUN, metavar="NAME",
        help="the exact run folder (a name inside --output, or a path); it must not exist yet")]),
    ("resume", None, Annotated[str | None, option("--resume", panel=RUN, metavar="RUN_DIR",
        help="continue RUN_DIR after its last finished stage (hashes of its files checked); no other flags")]),
    ("nproc", None, Annotated[int | None, option("--nproc", panel=RUN, metavar="N",
        help="train, distill and QAT data-parallel in N processes on this machine (one per GPU, or per core on the "
        "CPU; torch.distributed); the global batch size stays the recipe's. Also with --resume (same N)")]),
    ("master_port", None, Annotated[int | None, option("--master-port", panel=RUN, metavar="PORT",
        help="with --nproc: the port of the processes' rendezvous on this machine (default: a free one)")]),
    ("sets", None, Annotated[list[str] | None, option("--set", panel=RUN, metavar="KEY=VALUE",
        help="override any recipe value, e.g. --set distill.temperature=2 (repeatable; `edgekit recipe defaults` "
        "lists the keys)")]),
    ("print_recipe", None, Annotated[bool, option("--print-recipe", panel=RUN,
        help="print the resolved recipe as YAML and exit without running")]),
    ("json_output", None, Annotated[bool, option("--json", panel=RUN,
        help="print one JSON object on stdout (run folder, status, the file to ship, the result rows); progress "
        "goes to stderr")]),
]  # fmt: skip

NAMED_OTHERWISE = {"sets": "--set", "json_output": "--json"}  # every other option is --<parameter-name>


def flag_of(name: str) -> str:
    """The flag a user typed for an option parameter (compress's, run's or search's)."""
    return NAMED_OTHERWISE.get(name, "--" + name.replace("_", "-"))


DEFAULTS = {"print_recipe": False, "json_output": False}

# The positional MODEL and --recipe of compress and search.
ModelArg = Annotated[
    str | None,
    typer.Argument(
        metavar="MODEL", help="zoo model or alias, e.g. mobilenet_v3 (see `edgekit models`)", show_default=False
    ),
]
RecipeOption = Annotated[
    str | None,
    typer.Option(
        "--recipe", metavar="FILE", rich_help_panel=MODEL, help="start from this recipe instead of the defaults"
    ),
]
with_pipeline_options = with_options([(name, DEFAULTS.get(name), ann) for name, _, ann in OPTIONS])


def overrides(flags: dict[str, Any], table: list[tuple[str, str | None, Any]] = OPTIONS) -> dict[str, Any]:
    """The recipe keys the given flags set (dotted, as `--set` writes them); `table`: the command's options."""
    import yaml

    out: dict[str, Any] = {}
    for name, key, _ in table:
        value = flags.get(name)
        if key is None or value is None:
            continue
        if name == "prune":
            value = parse_ratio(value)
        elif name == "global_prune":
            value = "global" if value else "uniform"
        out[key] = value.value if isinstance(value, Enum) else value
    if "gate.max_drop" in out:  # the flag also turns the gate on (the int8 check always uses the number)
        out["gate.enforce"] = True
    # A target flag replaces the recipe's ratio (a recipe file usually sets one); --prune with a target is still
    # an error.
    if ("prune.target_macs" in out or "prune.target_latency_ms" in out) and "prune.ratio" not in out:
        out["prune.ratio"] = 0.0
    for item in flags.get("sets") or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EdgekitError(f"--set {item!r} is not KEY=VALUE: write e.g. --set train.epochs=3")
        out[key] = yaml.safe_load(value)
    return out


def given_with_resume(flags: dict[str, Any], positional: tuple[str, Any]) -> list[str]:
    """The flags (and positional argument) given beside --resume, by the name a user typed."""
    label, value = positional
    given = [label] if value else []
    skip = {"resume", "print_recipe", "json_output", "nproc", "master_port"}  # how to run it, not what
    given += [flag_of(name) for name, v in flags.items() if name not in skip and v not in (None, [], False)]
    return sorted(given)
