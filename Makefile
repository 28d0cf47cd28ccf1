# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install test demo demo-simulate chromium clean backend load-backend

install: $(STAMP)

# constraints.txt pins the whole resolved environment (torch/torchvision pair, label-studio-ml's
# undeclared rq/redis, ...); a change to it or to setup.cfg reinstalls.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -c constraints.txt -e '.[test]'
	touch $@

test: install chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The browser tests drive Debian's chromium through playwright (which never downloads a browser here).
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

# Photos, real proposals (offline EfficientNet-Lite0), a local Label Studio and the annotation project;
# prints the URL and login and stays up until Ctrl-C.
demo: install
	$(BIN)/multilabelfy demo

# The same, then simulated annotators and an expert: disagreements, refinement and final labels in demo-data/.
demo-simulate: install
	$(BIN)/multilabelfy demo --simulate

# The ML backend under gunicorn on 127.0.0.1:9090 (settings from the environment: ml_backend/README.md),
# and its load test (loopback only; prints requests/s, latency percentiles, errors and worker memory).
backend: install
	$(BIN)/python -m multilabelfy.ml_backend._wsgi

load-backend: install
	$(BIN)/python benchmarks/load_backend.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
