# Two entry points, each self-contained on a fresh machine:
#   make demo   - create the venv, install, run the main job (E-SSL vs SimCLR on bundled data)
#   make test   - create the venv, install, run the whole test suite (what CI runs)
# The other checks of .ci/run: make lint (ruff rules + format), make typecheck (mypy), make dist-check (the sdist and
# the wheel: metadata, content, a clean install that imports every module).
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
PIP := $(PY) -m pip
EXTRAS ?= test,dev,lightning,lightly,demo,photonics
SOLO := .solo-overlay/.installed
SOLO_PATH := $(CURDIR)/.solo-overlay:$(CURDIR)/.solo-overlay-head
SOLO_METHOD_TESTS := simclr byol barlow_twins vicreg

.PHONY: setup system-deps demo test test-core test-solo lint typecheck check dist-check clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e ".[$(EXTRAS)]"
	touch $@

setup: $(VENV)/.installed

# MPB (the photonics solver) and Fashion-MNIST (real data for the demo and the quality benchmark) are Debian
# packages. Without MPB its physics tests skip with a reason; without Fashion-MNIST its tests skip, or fail under CI.
system-deps:
	@missing=""; \
	command -v mpb >/dev/null 2>&1 || missing="$$missing mpb"; \
	[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing="$$missing dataset-fashion-mnist"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	  else echo "note:$$missing not found and cannot install (run: sudo apt-get install$$missing)"; fi; }

# Real solo-learn (PyPI 1.0.2) and Lightning 2.1.2 as pinned `pip --target` overlays beside the venv.
$(SOLO): scripts/install_solo_overlay.sh $(VENV)/.installed
	scripts/install_solo_overlay.sh $(PY)
	touch $@

demo: setup
	$(VENV)/bin/essl-aug demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over essl_aug/ and adapters/ (the files and the settings: [tool.mypy] in pyproject.toml)
typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck

# Build the sdist and the wheel, twine check them, check their content, install the wheel into a fresh venv (its
# own torch: a few minutes) and import every module from it.
dist-check: setup
	scripts/check_dist.sh $(PY)

# pytest exits 5 when it collected nothing: a wrong test path, never a pass.
test-core: setup system-deps
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "error: pytest collected no tests (exit 5)" >&2; exit $$rc; }

# The adapter against real solo-learn, then solo-learn's own method tests with the E-SSL classes swapped in
# (a separate pytest call: the wheel ships a top-level `tests` package; the swap plugin lives in tests/adapters).
test-solo: $(SOLO)
	PYTHONPATH=$(SOLO_PATH) $(PY) -m pytest -q -p no:cacheprovider \
	    tests/adapters/test_solo_learn.py tests/adapters/test_solo_learn_head_api.py \
	    tests/adapters/test_solo_learn_views.py
	cd .solo-overlay && PYTHONPATH=$(SOLO_PATH):$(CURDIR)/tests/adapters $(PY) -m pytest -q -p no:cacheprovider \
	    -c /dev/null --rootdir . -p solo_learn_swap_plugin $(foreach m,$(SOLO_METHOD_TESTS),tests/methods/test_$(m).py)

test: test-core test-solo

clean:
	rm -rf $(VENV) .solo-overlay .solo-overlay-head .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist

# The documentation site (Sphinx + MyST), warnings as errors: broken references and undocumented public names fail.
.PHONY: docs
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PIP) install -q -e ".[docs]"
	touch $@

docs: $(VENV)/.docs-installed
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
