# The README's two commands: `make study` and `make test`. Both create .venv when missing.
PY = $(shell tools/env.sh | tail -n 1)
OUT ?= output/study
SEED ?= 2024
ARGS ?=

.PHONY: study test lint venv

venv:
	@tools/env.sh >/dev/null

study: venv
	MPLBACKEND=Agg .venv/bin/bayesbio study --out $(OUT) --seed $(SEED) $(ARGS)

test: venv
	MPLBACKEND=Agg .venv/bin/python -m pytest -q $(ARGS)

lint: venv
	.venv/bin/ruff check bayesbio tests examples benchmarks tools
	.venv/bin/ruff format --check bayesbio tests examples benchmarks tools
