# Convenience targets; each is one plain command you can also run by hand.
.PHONY: install test lint notebooks figures bench

install:
	python3 -m pip install -c constraints/cpu.txt -e ".[test]"

test:
	python -m pytest

lint:
	ruff check . && ruff format --check .

notebooks:  ## execute every notebook in place, refreshing committed outputs
	python notebooks/execute.py

figures:  ## regenerate the committed figures
	python analysis/theorem1.py
	python analysis/figure1.py

bench:
	python benchmarks/bench_bcpd.py
	python benchmarks/bench_ensemble.py
