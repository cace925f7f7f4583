# Set-up and everyday commands. `make train` and `make test` each install everything first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install train test test-fast test-upstream lint type format benchmark docs clean

install: $(VENV)/.installed

# torch is pinned to 2.13.0 first: that CPU build installs from local disk in seconds, whereas
# pip would otherwise resolve the package's range (torch>=2.6) to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[tests]"
	touch $@

# The main job: a short sparse SAC run that saves a model, an evaluation CSV and a plot under runs/.
train: install
	$(PY) -m sb3_sparse.train

# All tests, the learning and fault-injection tests marked slow included, one pytest-xdist worker per
# core; the slow tests are handed out first, one at a time (tests/conftest.py), the short ones fill in.
# 2 cores, a fresh clone under CI=true .ci/run (2026-12-06, at 8b6926b): 657 tests in 10m34s (the whole CI run,
# make test-upstream included: 16m02s); at a556dd5 624 tests in 10m37s (CI run 15m57s); before, 552 tests in 9m45s beside two trainings, 549 in 8m09s on a quiet
# machine (the whole CI run: 13m18s to 14m59s); 509 tests took
# 10m40s to 10m58s from fresh clones once the kill tests forked their processes from a preloaded server
# (tests/preloaded_processes.py), 11m41s to 13m43s before, moving with the machine's load; 15m54s before
# --maxschedchunk 1 and one thread per worker's subprocess (-n 3 took 15m26s: the suite is CPU-bound).
test: install
	$(PY) -m pytest -n auto --dist load --maxschedchunk 1

test-fast: install
	$(PY) -m pytest -n auto --dist load --maxschedchunk 1 -m "not slow"

# SB3's own test suite (../shared/upstream, beside the checkout) with the sparse policy names, apart from
# `make test` (about 3.5 minutes on 2 cores): at least 410 tests pass, and every test that fails is listed in
# docs/compatibility.rst with its reason (.ci/check_upstream.py).
UPSTREAM ?= ../shared/upstream/run-suite.sh
test-upstream: install
	@test -f $(UPSTREAM) || { echo "test-upstream: $(UPSTREAM) not found (SB3's suite lies beside the checkout in ../shared)"; exit 2; }
	bash $(UPSTREAM) > .upstream.log 2>&1; status=$$?; cat .upstream.log; test $$status -eq 0
	$(PY) .ci/check_upstream.py .upstream.log docs/compatibility.rst

lint: install
	$(PY) -m ruff check sb3_sparse tests benchmarks examples docs
	$(PY) -m ruff format --check sb3_sparse tests benchmarks examples docs
	$(PY) -m mypy

# Type checking of the package (also part of lint): mypy, configured in pyproject.toml.
type: install
	$(PY) -m mypy

format: install
	$(PY) -m ruff format sb3_sparse tests benchmarks examples docs
	$(PY) -m ruff check --fix sb3_sparse tests benchmarks examples docs

# The Sphinx documentation, warnings as errors, into docs/_build/html.
docs: install
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# Speed benchmarks (about 40 minutes on 2 cores); benchmarks/stream_ac_returns.py is a learning one, run apart.
benchmark: install
	$(PY) benchmarks/masking_overhead.py
	$(PY) benchmarks/callback_overhead.py
	$(PY) benchmarks/sac_step_speed.py
	$(PY) benchmarks/topology_overhead.py --sizes base --rounds 15
	$(PY) benchmarks/side_by_side.py
	$(PY) benchmarks/busy_machine.py

clean:
	rm -rf $(VENV) runs docs/_build docs/generated .pytest_cache .ruff_cache *.egg-info .upstream.log
