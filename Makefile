# fnsearch: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch first, pinned to the CPU wheel on these machines: a plain `pip install torch` would pull a
# multi-GB CUDA build. The pyproject's torch range admits it, so nothing more is downloaded.
TORCH ?= torch==2.13.0

.PHONY: install chromium postgres demo test lint format bench quality clean gpu-wheels

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# System packages come from apt (Debian/Ubuntu), installed when CI is set or the program is missing;
# `apt-get update` runs once per checkout, behind a stamp any such package can depend on.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_UPDATED := $(VENV)/.apt-updated
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q

$(APT_UPDATED):
	mkdir -p $(VENV)
	$(SUDO) apt-get update -q
	touch $@

# Chromium for the browser tests (tests/test_browser.py drives /usr/bin/chromium with Playwright; it
# never downloads a browser). Under CI a failed install fails the build; elsewhere the tests skip.
chromium:
	@if [ -n "$$CI" ] || [ ! -x /usr/bin/chromium ]; then \
	  { $(MAKE) --no-print-directory $(APT_UPDATED) && $(APT_INSTALL) chromium; } || \
	  { [ -z "$$CI" ] && echo "note: chromium could not be installed; the browser tests will skip"; }; \
	fi

demo: install
	$(VENV)/bin/fnsearch search studies/german_credit.toml --out runs/german_credit
	@echo "open runs/german_credit/report.html in a browser"

test: install chromium postgres
	$(PY) -m pytest -q

# PostgreSQL server for the multi-worker tests (tests/pg.py starts a throwaway cluster): installed
# on CI, where those tests must run, and wherever its binaries are missing.
postgres:
	@if [ -n "$$CI" ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(APT_UPDATED) && $(APT_INSTALL) postgresql; \
	fi

lint: install
	$(VENV)/bin/ruff check fnsearch tests bench
	$(VENV)/bin/ruff format --check fnsearch tests bench

format: install
	$(VENV)/bin/ruff format fnsearch tests bench
	$(VENV)/bin/ruff check --fix fnsearch tests bench

bench: install
	$(PY) bench/storage.py
	$(PY) bench/speed.py

# Choice quality against scikit-learn peers (about 15 minutes on 2 cores; README "Does it pick well?").
quality: install
	OMP_NUM_THREADS=1 $(PY) bench/quality.py --set model.threads=1

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info

# Wheels for bench/gpu.py on the lent GPU machine (Python 3.12, no network there): optuna and the
# pure-Python packages it needs that the machine lacks, at the versions installed here.
GPU_WHEELS := optuna alembic colorlog sqlalchemy mako greenlet
gpu-wheels: install
	rm -rf .whl && mkdir -p .whl
	for p in $(GPU_WHEELS); do \
	  v=$$($(PY) -c "import importlib.metadata as m; print(m.version('$$p'))"); \
	  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
	    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	    --platform manylinux2014_x86_64 -d .whl "$$p==$$v" || exit 1; \
	done
	ls .whl
