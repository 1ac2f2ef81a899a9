# The two commands: `make book` and `make test`. Both set up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SHARED_DATA := $(abspath ../shared/data)
# Tests, CI and local builds read the data from ../shared/data when it is there;
# otherwise mmbook downloads it into the user cache.
export MMBOOK_DATA ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
export MMBOOK_CACHE ?= $(abspath _build/mmbook-cache)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
JOBS ?= 2

.PHONY: book test setup unit notebooks seeds student html-check lint strip vendor chromium clean \
	bench gpu-check sandbox

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The ipywidgets JavaScript (html-manager + require.js), brought by npm, never committed.
vendor: _build/vendor/embed-amd.js _build/vendor-js/plotly.min.js
# plotly.js for the kernel-free explorers: the copy bundled in the installed plotly package
# (served from the book's root, see html_extra_path in _config.yml)
_build/vendor-js/plotly.min.js: $(STAMP)
	@mkdir -p _build/vendor-js
	cp "$$($(BIN)/python -c 'import plotly, pathlib; print(pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js")')" $@
_build/vendor/embed-amd.js:
	@mkdir -p _build/npm _build/vendor
	cd _build/npm && npm install --silent --no-audit --no-fund --prefix . \
		@jupyter-widgets/html-manager@1.0.13 requirejs@2.3.7 >/dev/null
	cp _build/npm/node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js _build/vendor/
	cp _build/npm/node_modules/requirejs/require.js _build/vendor/require.min.js

# Execute every notebook (Jupyter Book's cache: only notebooks whose code changed run
# again) and build the HTML into _build/html. A failing cell or assert is an execution
# warning, and -W makes any warning fail the build.
book: setup vendor
	OMP_NUM_THREADS=2 $(BIN)/jupyter-book build . -W -n --keep-going
	@echo "book: open _build/html/index.html"

# Unit tests, then every notebook executed ONCE (in parallel, with its time printed; a
# failing cell or assert fails the run), its outputs stored in Jupyter Book's cache so that
# the book build renders them without executing again, then the rendered-HTML check.
test: setup lint sandbox
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests --doctest-modules mmbook -n $(JOBS) --dist loadfile \
		--durations=15 -q
	$(MAKE) notebooks
	$(MAKE) seeds
	$(MAKE) book
	$(MAKE) html-check

unit: setup
	$(BIN)/python -m pytest tests -n $(JOBS) --dist loadfile -q

# The chapters with learned comparisons, executed again under two other seeds
# (MMBOOK_SEED): their claims must hold for any seed, not only the one the book shows.
seeds: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests/test_seeds.py --seeds -n $(JOBS) -q

# The student edition: every chapter without its solutions, under _build/student/book.
student: setup
	$(BIN)/python -m mmbook.grade --student-edition book --out _build/student/book

# Each notebook executed once, times printed, outputs cached for `make book`.
notebooks: setup
	OMP_NUM_THREADS=1 $(BIN)/python tools/run_notebooks.py book/*.ipynb --jobs $(JOBS) \
		--cache _build/.jupyter_cache

chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the HTML check"; \
		(apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) || \
		{ echo "could not install chromium: run 'apt-get install chromium' as root"; exit 1; }; }

# The grader's sandbox (bubblewrap): python -m mmbook.grade refuses to grade without it, and
# the grader's tests (tests/test_grade*.py) fail. Installed with apt-get when run as root.
sandbox:
	@command -v bwrap >/dev/null || { \
		if [ "$$(id -u)" != 0 ]; then echo "the grader's sandbox needs bubblewrap: run" \
			"'apt-get install bubblewrap' (or 'make sandbox') as root"; exit 1; fi; \
		echo "installing Debian's bubblewrap for the grader's sandbox"; \
		(apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 bubblewrap \
		>/dev/null) || { echo "could not install bubblewrap with apt-get: install the" \
		"package bubblewrap (it provides bwrap) by hand"; exit 1; }; }

html-check: setup chromium
	$(BIN)/python -m pytest tests/rendered --rendered -q

lint: setup
	$(BIN)/ruff check mmbook tests book benchmarks tools conftest.py

strip: setup
	$(BIN)/nbstripout book/*.ipynb

bench: setup
	@for f in benchmarks/bench_*.py; do echo "== $$f"; OMP_NUM_THREADS=1 $(BIN)/python $$f || exit 1; done

# On a machine with CUDA: the unit tests on the GPU (a test skipped for want of CUDA fails),
# then every chapter executed on the GPU with its time. Without CUDA: says so, exits 0.
gpu-check: setup
	@if ! $(BIN)/python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; \
	then echo "gpu-check: no CUDA device on this machine; nothing to check"; exit 0; fi; \
	$(BIN)/python -c "import torch; print('gpu-check on', torch.cuda.get_device_name(0))" && \
	MMBOOK_DEVICE=cuda MMBOOK_REQUIRE_CUDA=1 $(BIN)/python -m pytest tests -q -x \
		--durations=10 && \
	MMBOOK_DEVICE=cuda $(BIN)/python tools/run_notebooks.py book/*.ipynb --jobs 1

clean:
	rm -rf _build
