# Two entry points (see README): `make demo` and `make test`. Both create/refresh a local
# virtualenv in .venv, installing torch==2.13.0 first so no other package can pull a CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
STAMP := $(VENV)/.installed

LABEL_STAMP := $(VENV)/.installed-label

.PHONY: install install-label demo lint format test test-fast bench gpu-smoke clean

$(STAMP): setup.cfg pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check torch==2.13.0
	$(PIP) install -q --disable-pip-version-check -c $(CONSTRAINTS) -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# MONAI Label (docs/monai_label.md): monailabel and pydicom-seg without their declared dependencies
# (sam2 would build from source and pull a CUDA torch; pydicom-seg pins numpy < 2), then what the
# server imports at run time (requirements/label.txt, which says what is left out and why)
$(LABEL_STAMP): $(STAMP) requirements/label.txt
	$(PIP) install -q --disable-pip-version-check -c $(CONSTRAINTS) --no-deps monailabel==0.8.5 pydicom-seg==0.4.1
	$(PIP) install -q --disable-pip-version-check -c $(CONSTRAINTS) -r requirements/label.txt
	$(PY) -c "import monai_genvq.apps.monai_label.app"
	touch $(LABEL_STAMP)

install-label: $(LABEL_STAMP)

demo: $(STAMP)
	$(PY) -m monai_genvq.apps.streamlines.demo

# ruff (config in pyproject.toml): lint + formatting check; `make format` applies both
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# unit tests, docstring examples (--doctest-modules on the package) and the end-to-end bundle runs
test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_streamline_training.py
	$(PY) benchmarks/bench_streamline_data.py
	$(PY) benchmarks/bench_buan.py
	$(PY) benchmarks/bench_quantizers.py
	$(PY) benchmarks/bench_cardiac.py
	$(PY) benchmarks/bench_hyperbolic.py
	$(PY) benchmarks/bench_brats_case.py
	$(PY) benchmarks/bench_anatomical_prior.py
	$(PY) benchmarks/bench_vs_official.py $(if $(VQDIFF_CODE),--vqdiff-code $(VQDIFF_CODE)) $(if $(ARVAE_CODE),--arvae-code $(ARVAE_CODE))

# a few hundred training iterations of every bundle on the GPU (CPU when there is none), AMP on CUDA
gpu-smoke: $(STAMP)
	$(PY) benchmarks/gpu_smoke.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
