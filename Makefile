# The two commands of the README. Both set everything up on a fresh machine (a virtual
# environment in .venv with the CPU build of torch 2.13) and are safe to rerun.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/asimc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,gpu,ray,hf]"
	touch $(BIN)/asimc

# The main job: compare the bundled chips on the bundled CNN with the digits data set.
demo: $(BIN)/asimc
	$(BIN)/asimc compare examples/models/digits_cnn.onnx --chips chips/*.acim --data digits

test: $(BIN)/asimc
	$(BIN)/python -m pytest

bench: $(BIN)/asimc
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
