PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'from routing.solvers.lns import kernels; kernels()'
	$(BIN)/python -c 'from routing._dijkstra import warm_up; warm_up()'
	$(BIN)/python -c 'from dispatch._load_kernel import warm_up; warm_up()'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lastmile simulate scenarios/porto-centre-day.toml --out out

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
