"""Structured channel pruning on torch-pruning's dependency graph, one purpose per module:

- `importance`: the criteria (l1, l2, bn_scale, taylor, random) and Taylor's gradient pass;
- `pruner`: the torch-pruning pruner edgekit builds (scope, per-layer floor, layer ratios, zoo hooks);
- `iterative`: pruning in N steps with a short fine-tune between them;
- `targets`: searching the ratio that meets a MACs or an ONNX Runtime latency target.

`edgekit.stages.prune` is the pipeline stage on top of these."""
