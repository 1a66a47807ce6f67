# Two entry points for a newcomer: `make run` and `make test`.
# Both create the environment first if it is missing or out of date.
SHELL := /bin/bash
VENV := .venv
UV_HOME := .uv
UV := $(UV_HOME)/bin/uv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Keras 2 (tf_keras) everywhere: TFT and TFMA 1.16 need it.
export TF_USE_LEGACY_KERAS := 1
export PYTHONHASHSEED := 0
ARGS ?=
PYTEST_ARGS ?=
# Test files run on this many processes (pytest-xdist); a file stays on one
# process so its module fixtures (one pipeline run shared by many asserts) run once.
TEST_WORKERS ?= 2

.PHONY: run test test-fast spans bench env lock clean
SPANS_DIR ?= /tmp/tfx-distill-spans

run: $(STAMP)
	$(VENV)/bin/tfx-distill run $(ARGS)

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

# Everything that runs no whole pipeline (the loss, the CLI checks, the gates'
# EvalConfigs, the report, the components on small fixtures).
test-fast: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -m "not pipeline" $(PYTEST_ARGS)

# Retraining on spans, played locally (pipelines/taxi/spans.py): four
# scheduled runs in one pipeline root; prints each summary and the outcomes.
spans: $(STAMP)
	rm -rf $(SPANS_DIR)
	$(PY) -m distill_pipelines.taxi.spans --workdir $(SPANS_DIR) $(ARGS)

# Benchmarks (not tests): write bench/results/*.json, *.md and *.png.
# quality.py first: serving, throughput and distiller_profile read its pipeline run;
# labelling.py and evaluator_profile.py read scale.py's.
bench: $(STAMP)
	$(PY) bench/tasks.py
	$(PY) bench/quality.py
	$(PY) bench/serving.py
	$(PY) bench/throughput.py
	$(PY) bench/distiller_profile.py
	$(PY) bench/pipeline.py
	$(PY) bench/scale.py --stock
	$(PY) bench/labelling.py --pipeline-root bench/work/scale/*/pipeline
	$(PY) bench/evaluator_profile.py --pipeline-root bench/work/scale/1000000/pipeline --rows 5000 25000
	$(PY) bench/tfx_examples.py

env: $(STAMP)

# uv resolves the TFX tree in seconds where pip backtracks for many minutes.
$(UV):
	python3 -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet uv==0.13.9

# --seed puts pip in the venv: TFX installs module-file wheels with `python -m pip`.
$(STAMP): requirements.lock setup.py | $(UV)
	test -x $(PY) || $(UV) venv --seed --python 3.10 $(VENV)
	$(UV) pip sync --python $(PY) requirements.lock
	$(UV) pip install --python $(PY) --no-deps -e .
	touch $@

lock: | $(UV)
	$(UV) pip compile requirements.in --python-version 3.10 -o requirements.lock

clean:
	rm -rf $(VENV) $(UV_HOME) build *.egg-info
