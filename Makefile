PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run simulate test bench lint lock clean

# constraints.txt pins every package the project installs (refreshed by `make lock`).
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -c 'from routing.solvers.lns import kernels; kernels()'
	$(BIN)/python -c 'from routing._dijkstra import warm_up; warm_up()'
	$(BIN)/python -c 'from routing._cch_exact import warm_up; warm_up()'
	$(BIN)/python -c 'from dispatch._load_kernel import warm_up; warm_up()'
	touch $(STAMP)

# The live demo: the API with the map console, the Porto day's orders and courier apps driven through it over HTTP.
run: $(STAMP)
	$(BIN)/lastmile serve --demo scenarios/porto-centre-day.toml

simulate: $(STAMP)
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

# Resolve pyproject.toml afresh in a throwaway venv and pin what it installs.
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --upgrade pip
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]'
	{ sed -n '1,2p' constraints.txt; .lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .lock-venv
	@echo "constraints.txt refreshed: run 'make test' and 'make bench' before committing it"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
