# The two set-up commands (README): `make demo` and `make test`, as root on Debian 12.
PY := .venv/bin/python

.PHONY: setup demo lint test test-slow bench clean image qemu

setup:
	@tools/setup.sh

demo: setup
	PYTHONPATH=lab $(PY) -m cblab.demo

# Style and types: ruff's lint and format check over the tree, mypy where it is strict
# (pyproject.toml lists what). CI runs it before the tests.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

# Every tier: unit, integration (namespaces), browser, and the VM tier (builds or takes
# from the cache the qemu-amd64 test image and boots it under QEMU). If the only failures
# came with the guest's kernel panicked under TCG, their test files run once more on a
# fresh guest, loudly (tests/vm/conftest.py says why).
PANIC_NOTE := tests/artifacts/guest-panicked
test: setup
	@rm -f $(PANIC_NOTE)
	$(PY) -m pytest --vm || { test -f $(PANIC_NOTE) && cat $(PANIC_NOTE) && \
		$(PY) -m pytest --vm $$(tail -n 1 $(PANIC_NOTE)); }

test-slow: setup
	$(PY) -m pytest -m slow --vm

bench: setup
	$(PY) bench/vpn_scale.py
	$(PY) bench/store_bytes.py
	$(PY) bench/backup.py
	$(PY) bench/webui_pages.py
	$(PY) bench/relay.py
	$(PY) bench/image_boot.py
	$(PY) bench/update.py
	$(PY) bench/storage.py

# The OS image of a board (image/profiles/BOARD.toml), built outside the repository;
# an unchanged recipe and source reuse the build cache ($$CBIMAGE_CACHE, ~/.cache/cbimage).
# TEST=1 builds a test image (a root command channel on a virtio serial port, for the VM harness);
# TEST=0 (or no TEST) a release image; any other value is refused.
BOARD ?= qemu-amd64
ifeq ($(TEST),1)
TEST_IMAGE := -test
else ifneq ($(filter-out 0,$(TEST)),)
$(error TEST=$(TEST): say TEST=1 for a test image or TEST=0 for a release image)
endif
IMAGE_DIR ?= /var/tmp/commonsbox/$(BOARD)$(TEST_IMAGE)

image: setup
	cd image && ../$(PY) -m cbimage build --board $(BOARD) --out $(IMAGE_DIR) $(if $(TEST_IMAGE),--test)

# Boot it under QEMU with the console on this terminal (Ctrl-A X quits); the web UI is
# forwarded to https://127.0.0.1:8443/, WireGuard to udp 51820.
qemu: image
	cd qemu && ../$(PY) -m cbvm run --image $(IMAGE_DIR)

clean:
	rm -rf .venv .pytest_cache tests/artifacts bench/results
