# Two entry points, each self-contained on a fresh machine:
#   make demo   - create the venv, install, run the main job (E-SSL vs SimCLR on bundled data)
#   make test   - create the venv, install, run the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
PIP := $(PY) -m pip
EXTRAS ?= test,lightning,lightly,demo,photonics
SOLO := .solo-overlay/.installed
SOLO_PATH := $(CURDIR)/.solo-overlay:$(CURDIR)/.solo-overlay-head
SOLO_METHOD_TESTS := simclr byol barlow_twins vicreg

.PHONY: setup system-deps demo test test-core test-solo lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

# MPB (the photonics solver) is a Debian package; without it the MPB physics tests skip with a reason.
system-deps:
	@command -v mpb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mpb >/dev/null; \
	  else echo "note: 'mpb' not found and cannot install it (run: sudo apt-get install mpb)"; fi; }

# Real solo-learn (PyPI 1.0.2) and Lightning 2.1.2 as pinned `pip --target` overlays beside the venv.
$(SOLO): scripts/install_solo_overlay.sh $(VENV)/.installed
	scripts/install_solo_overlay.sh $(PY)
	touch $@

demo: setup
	$(VENV)/bin/essl-aug demo

lint: setup
	$(VENV)/bin/ruff check .

test-core: setup system-deps
	$(PY) -m pytest -q

# The adapter against real solo-learn, then solo-learn's own method tests with the E-SSL classes swapped in
# (a separate pytest call: the wheel ships a top-level `tests` package).
test-solo: $(SOLO)
	PYTHONPATH=$(SOLO_PATH) $(PY) -m pytest -q -p no:cacheprovider \
	    tests/adapters/test_solo_learn.py tests/adapters/test_solo_learn_head_api.py
	cd .solo-overlay && PYTHONPATH=$(SOLO_PATH) $(PY) -m pytest -q -p no:cacheprovider -c /dev/null --rootdir . \
	    -p essl_aug.adapters.solo_learn_swap_plugin $(foreach m,$(SOLO_METHOD_TESTS),tests/methods/test_$(m).py)

test: test-core test-solo

clean:
	rm -rf $(VENV) .solo-overlay .solo-overlay-head .pytest_cache .ruff_cache .hypothesis
