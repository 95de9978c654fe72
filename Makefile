# Two commands set everything up on a fresh machine: `make demo` and `make test`.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.interns1-env-stamp
PYTEST_ARGS ?=

.PHONY: env test test-fast test-distributed stress lint demo bench report clean

env: $(STAMP)

# Engines first (vLLM's CPU build, LMDeploy's Python side), then the plugin in editable mode;
# setuptools only warns when the build hook fails in editable mode, so the .pth is checked.
$(STAMP): .ci/setup-env.sh pyproject.toml
	bash .ci/setup-env.sh
	$(PY) -m pip install -q -e '.[vllm,lmdeploy,chem,test,bench]'
	$(PY) -m interns1_plugin.lmdeploy.check_pth
	touch $(STAMP)

lint: env
	$(PY) -m ruff check .

test: env lint
	$(PY) -m pytest $(PYTEST_ARGS)

# Everything but the tests that start servers or several vLLM ranks.
test-fast: env
	$(PY) -m pytest -m "not server and not distributed" $(PYTEST_ARGS)

# Only the tensor / pipeline / expert parallel runs (also part of `make test`).
test-distributed: env
	$(PY) -m pytest -m distributed $(PYTEST_ARGS)

# Bigger runs of what `make test` runs small: 100,000-output parser fuzzing per engine path
# (INTERNS1_FUZZ_STRESS_N), then the full load and hostile-input benchmarks.
stress: env
	$(PY) -m pytest -m stress $(PYTEST_ARGS)
	$(PY) benchmarks/load.py
	$(PY) benchmarks/hostile_inputs.py

demo: env
	$(PY) -m interns1_plugin.demo

bench: env
	$(PY) benchmarks/parsers.py
	$(PY) benchmarks/preprocess.py
	$(PY) benchmarks/tokenizer.py
	$(PY) benchmarks/serving.py
	$(PY) benchmarks/time_series.py
	$(PY) benchmarks/hostile_inputs.py
	$(PY) benchmarks/load.py

# Every benchmark (minutes), then benchmarks/REPORT.md; REPORT_ARGS=--no-run only re-renders it.
REPORT_ARGS ?=
report: env
	$(PY) benchmarks/report.py $(REPORT_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
