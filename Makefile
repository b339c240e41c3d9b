# The README's two commands: `make demo` and `make test`. Both set up what is
# missing first (Debian packages, .venv, the package with its extras, npm assets).

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed

.PHONY: setup demo test bench faults lint screenshots clean

setup: $(STAMP)
	@scripts/setup-system.sh
	@scripts/vendor-assets.sh
	@# A speaker's wheelhouse for this machine: the tests run a card's first boot here.
	@$(PY) -m provisioning.cli wheelhouse --role speaker --host --wheels-cache .cache/wheelhouse \
	  >/dev/null

$(STAMP): pyproject.toml
	@scripts/setup-system.sh
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: setup
	$(PY) -m sim.demo

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m bench

# 100 faults against the real broker, controller and nodes; writes docs/faults.md.
# (A short form of 20 runs in `make test`: tests/test_fault_campaign.py.)
faults: setup
	$(PY) -m sim.faults --faults 100

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache *.egg-info node_modules \
	  controller/web/static/vendor

# PNGs of every kiosk screen at 800x480, 1280x800 and 480x800 (portrait), under a throwaway X
# server; and of every console page (Chromium, the demo's data) into docs/console.
screenshots: setup
	for size in 800x480 1280x800 480x800; do \
	  xvfb-run -a -s "-screen 0 1920x1200x24" $(PY) -m kiosk.screenshots --size $$size \
	    --out docs/screenshots || exit 1; \
	done
	$(PY) -m sim.console_screens --out docs/console
