# The two commands: `make book` and `make test`. Both set up .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Pinned versions by default; the weekly dependency-drift workflow sets CONSTRAINTS= (the
# newest versions within requirements.txt's ranges) and TORCH=torch. TORCH_INDEX: where the
# CPU build of torch comes from (GitHub's runners: https://download.pytorch.org/whl/cpu).
CONSTRAINTS ?= -c constraints.txt
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
SHARED_DATA := $(abspath ../shared/data)
# Tests, CI and local builds read the data from ../shared/data when it is there;
# otherwise mmbook downloads it into the user cache.
export MMBOOK_DATA ?= $(if $(wildcard $(SHARED_DATA)/README.md),$(SHARED_DATA),)
export MMBOOK_CACHE ?= $(abspath _build/mmbook-cache)
export PYDEVD_DISABLE_FILE_VALIDATION := 1
JOBS ?= 2
CACHE := _build/.jupyter_cache
# The one notebook executor (mmbook.execute): each notebook in a process of its own, JOBS at
# a time, its time printed, its outputs stored in Jupyter Book's cache. The limits leave room
# for a machine two or three times slower than usual (a busy one): 20 minutes a cell,
# 40 a notebook; a run whose processes use no CPU for 5 minutes is a stall (a kernel and
# its client waiting for each other), killed and tried once more.
EXECUTE := OMP_NUM_THREADS=1 $(BIN)/python -m mmbook.execute book/*.ipynb --jobs $(JOBS) \
	--cache $(CACHE) --timeout 1200 --notebook-timeout 2400 --idle-timeout 300

.PHONY: book test setup unit notebooks seeds student html-check lint strip vendor chromium clean \
	bench gpu-check pdf data under-load sandbox

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check $(CONSTRAINTS) "$(TORCH)" \
		$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q --disable-pip-version-check $(CONSTRAINTS) -r requirements.txt
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

# Execute the notebooks whose cached outputs are not current (their code cells, the mmbook
# package or the seed changed since), through the same executor as `make notebooks`; a
# failing cell or assert stops here, and the notebook's old outputs are dropped. Then render
# _build/html from the cache (tools/build_book.py: a page whose outputs changed is rendered
# again; a notebook without current outputs stops the render; -W makes any warning fatal).
book: setup vendor
	$(EXECUTE) --skip-current
	$(BIN)/python tools/build_book.py --cache $(CACHE)
	@echo "book: open _build/html/index.html"

# Unit tests, then every notebook executed ONCE (in parallel, with its time printed; a
# failing cell or assert fails the run), its outputs stored in Jupyter Book's cache so that
# the book build renders them without executing again (`make book` executes nothing here),
# the PDF printed, then the rendered checks of the HTML and the PDF.
test: setup lint sandbox
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests --doctest-modules mmbook -n $(JOBS) --dist loadfile \
		--durations=15 -q
	$(MAKE) notebooks
	$(MAKE) seeds
	$(MAKE) book
	$(MAKE) pdf
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
	$(EXECUTE)

# Every data set fetched (when missing) and verified against its checksums, for offline use:
# into $$MMBOOK_DATA when set, else the user cache (~/.cache/mmbook/data).
data: setup
	$(BIN)/python -m mmbook.data

# The book as one PDF, for printing: each page of _toc.yml printed by headless Chromium,
# in order, merged into _build/pdf/mmbook.pdf (run `make book` first).
pdf: setup chromium
	@test -f _build/html/index.html || { echo "pdf: no built book: run 'make book' first"; exit 1; }
	$(BIN)/python tools/print_pdf.py --out _build/pdf/mmbook.pdf

# A command under a competing CPU load (2 busy processes), e.g. make under-load CMD="make book"
CMD ?= make book
under-load:
	tools/under_load.sh $(CMD)

chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		command -v google-chrome >/dev/null || { echo "installing Debian's chromium"; \
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
	$(BIN)/nbstripout --keep-id book/*.ipynb

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
