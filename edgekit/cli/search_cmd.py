"""`edgekit search`: the compress pipeline with a search stage that chooses every layer's pruning ratio
(GA, PSO or random search) under a measured latency or MACs target. It takes compress's options except
those that say how to prune (the search decides), plus the search's own; each sets one recipe key."""

from typing import Annotated, Any

from edgekit.cli.choices import Importance, SearchAlgorithm
from edgekit.cli.pipeline_cmds import execute
from edgekit.cli.pipeline_options import DEFAULTS, OPTIONS, ModelArg, RecipeOption, option, overrides
from edgekit.cli.signature import with_options
from edgekit.errors import EdgekitError

SEARCH = "Search"
HOW_TO_PRUNE = {"prune", "importance", "target_macs", "target_latency_ms", "prune_steps", "global_prune"}
WHY_NO_PRUNE_FLAGS = (
    "the search chooses each layer's ratio itself; give it a target (--target-latency-ms, "
    "--target-latency-ratio or --target-macs)"
)

SEARCH_OPTIONS: list[tuple[str, str | None, Any]] = [
    ("target_latency_ms", "search.target_latency_ms", Annotated[float | None, option("--target-latency-ms",
        panel=SEARCH, metavar="MS", help="the chosen model's ONNX Runtime CPU p50 (batch 1, 1 thread), measured, is "
        "at most MS")]),
    ("target_latency_ratio", "search.target_latency_ratio", Annotated[float | None, option("--target-latency-ratio",
        panel=SEARCH, metavar="FRACTION", help="instead of --target-latency-ms: the chosen model's p50 is at most this "
        "fraction of the unpruned model's, both timed the same way (0.67 = 1.5x faster)")]),
    ("target_macs", "search.target_macs", Annotated[float | None, option("--target-macs", panel=SEARCH,
        metavar="FRACTION", help="the chosen model keeps at most this fraction of the baseline MACs, e.g. 0.5")]),
    ("algorithm", "search.algorithm", Annotated[SearchAlgorithm | None, option("--algorithm", panel=SEARCH,
        help="genetic algorithm (default), particle swarm, or random search (the control)")]),
    ("budget_evals", "search.budget_evals", Annotated[int | None, option("--budget-evals", panel=SEARCH, metavar="N",
        help="candidates evaluated at most (default 60; a repeated architecture is free)")]),
    ("budget_minutes", "search.budget_minutes", Annotated[float | None, option("--budget-minutes", panel=SEARCH,
        metavar="MIN", help="stop the search after MIN minutes")]),
    ("population", "search.population", Annotated[int | None, option("--population", panel=SEARCH, metavar="N",
        help="candidates per generation (default 12)")]),
    ("min_keep", "search.min_keep", Annotated[float | None, option("--min-keep", panel=SEARCH, metavar="FRACTION",
        help="the narrowest a layer may become, as a fraction of its channels (default 0.3)")]),
    ("search_seed", "search.seed", Annotated[int | None, option("--search-seed", panel=SEARCH, metavar="N",
        help="the search's random seed (default 0): the same seed and settings give the same search")]),
    ("importance", "search.importance", Annotated[Importance | None, option("--importance", panel=SEARCH,
        help="which channels a layer keeps (default l2)")]),
]  # fmt: skip

TABLE = [*SEARCH_OPTIONS, *(o for o in OPTIONS if o[0] not in HOW_TO_PRUNE)]
# The search chooses how to prune: the recipe's own prune settings give way to it.
PRUNE_CLEARED: dict[str, Any] = {
    "prune.ratio": 0.0,
    "prune.target_macs": None,
    "prune.target_latency_ms": None,
    "prune.layer_ratios": {},
}


@with_options([(name, DEFAULTS.get(name), ann) for name, _, ann in TABLE])
def search(
    model: ModelArg = None,
    recipe: RecipeOption = None,
    **flags: Any,
) -> None:
    """Search each layer's pruning ratio under a latency or MACs target, then compress the chosen model.

    The chosen model is distilled, exported, quantized and validated as compress does.

    search/ in the run folder: every candidate, the Pareto front, and search_recipe.yaml for `edgekit run`.

    Example: edgekit search mobilenet_v3 --target-latency-ms 1.5 --algorithm pso --int8
    """

    def build() -> Any:
        from edgekit.recipe import from_dict, load_recipe
        from edgekit.stages.search import searches

        if not model:
            raise EdgekitError(
                "search needs a MODEL (e.g. edgekit search mobilenet_v3 --target-latency-ms 1.5) or --resume RUN_DIR"
            )
        over = {"model.name": model, **PRUNE_CLEARED, **overrides(flags, TABLE)}
        built = load_recipe(recipe, over) if recipe else from_dict({}, "command line", over)
        if not searches(built.search):
            raise EdgekitError(
                "search needs a target: add --target-latency-ms MS (measured ONNX Runtime CPU p50), "
                "--target-latency-ratio FRACTION (of the unpruned model's p50) or --target-macs FRACTION (of the "
                "baseline MACs), or set search.target_* in the recipe"
            )
        return built

    execute(build, flags, ("MODEL" if model else "--recipe", model or recipe))
