# The two commands of the README. Both set everything up on a fresh machine (a virtual
# environment in .venv with the CPU build of torch 2.13) and are safe to rerun.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: demo demo-fashion test bench clean data

# Fashion-MNIST (the tests and demo-fashion need it) from the Debian package dataset-fashion-mnist,
# installed where apt-get exists and we are root (as in CI); elsewhere, say how to install it.
FASHION_MNIST = /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

data: $(FASHION_MNIST)

$(FASHION_MNIST):
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    apt-cache show dataset-fashion-mnist >/dev/null 2>&1 || apt-get update -qq >/dev/null; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null; \
	else \
	    echo "Fashion-MNIST is missing: run  sudo apt-get install dataset-fashion-mnist" >&2; \
	    exit 1; \
	fi

$(BIN)/asimc: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,gpu,ray,hf]"
	touch $(BIN)/asimc

# The main job: compare the bundled chips on the bundled CNN with the digits data set.
demo: $(BIN)/asimc
	$(BIN)/asimc compare examples/models/digits_cnn.onnx --chips chips/*.acim --data digits

# The same comparison on a harder benchmark: the row-filling ResNet on the first 100 of
# Fashion-MNIST's 10,000 test images, two noise seeds (see examples/FINDINGS.md).
demo-fashion: $(BIN)/asimc data
	$(BIN)/asimc compare examples/models/fashion_resnet.onnx --chips chips/*.acim \
	    --data fashion-mnist --limit 100 --seeds 2

test: $(BIN)/asimc data
	$(BIN)/python -m pytest

bench: $(BIN)/asimc
	$(BIN)/python benchmarks/bench_kernels.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
