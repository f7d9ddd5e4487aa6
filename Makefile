# fnsearch: `make demo` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch first, pinned to the CPU wheel on these machines: a plain `pip install torch` would pull a
# multi-GB CUDA build. The pyproject's torch range admits it, so nothing more is downloaded.
TORCH ?= torch==2.13.0

.PHONY: install demo test lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(TORCH)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/fnsearch search studies/german_credit.toml --out runs/german_credit
	@echo "open runs/german_credit/report.html in a browser"

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check fnsearch tests bench
	$(VENV)/bin/ruff format --check fnsearch tests bench

format: install
	$(VENV)/bin/ruff format fnsearch tests bench
	$(VENV)/bin/ruff check --fix fnsearch tests bench

bench: install
	$(PY) bench/storage.py
	$(PY) bench/speed.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
