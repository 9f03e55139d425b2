"""The comparison benchmark (issue 4): edgekit's default pipeline against what a user gets today from
torch-pruning, ONNX Runtime's quantize_static and NNCF, on the same baseline and calibration images.
Entry point: `python bench/compare.py` (see bench/README.md)."""
