# The two set-up commands (README): `make demo` and `make test`, as root on Debian 12.
PY := .venv/bin/python

.PHONY: setup demo test test-slow bench clean

setup:
	@tools/setup.sh

demo: setup
	$(PY) -m appliance.demo

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

bench: setup
	$(PY) bench/vpn_scale.py
	$(PY) bench/webui_pages.py

clean:
	rm -rf .venv .pytest_cache tests/artifacts bench/results
