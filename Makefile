# Two entry points, each self-contained on a fresh machine:
#   make demo   - create the venv, install, run the main job (E-SSL vs SimCLR on bundled data)
#   make test   - create the venv, install, run the whole test suite (what CI runs)
# The other checks of .ci/run: make lint (ruff rules + format), make typecheck (mypy), make solo-recipe (the solo-learn
# guide's install recipe and CPU smoke test), make dist-check (the sdist and the wheel: metadata, content, a clean
# install that imports every module).
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
PIP := $(PY) -m pip
EXTRAS ?= test,dev,lightning,lightly,demo,photonics
SOLO_OVERLAY := $(CURDIR)/.solo-overlay
SOLO := $(SOLO_OVERLAY)/.installed
# solo-learn's GitHub version (HEAD), unmodified, from a clone: ../shared/clients/solo-learn unless SOLO_LEARN_SRC is set
SOLO_LEARN_SRC ?= ../shared/clients/solo-learn
SOLO_SRC := $(abspath $(SOLO_LEARN_SRC))
SOLO_METHOD_TESTS := simclr byol barlow_twins vicreg

.PHONY: setup system-deps demo test test-core test-solo solo-recipe lint typecheck check dist-check clean test-spt

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

# What solo-learn's GitHub version runs on (lightning 2.1.2, torchmetrics 0.11.4, hydra, timm, ...), pinned, as a
# `pip --no-deps --target` overlay beside the venv (the venv's torch untouched); its code comes from SOLO_LEARN_SRC.
$(SOLO): scripts/install_solo_overlay.sh $(VENV)/.installed
	scripts/install_solo_overlay.sh $(PY) $(SOLO_OVERLAY)
	touch $@

# stable-pretraining (PyPI 0.1.8) and its own examples, for the adapter's tests, as a `pip --no-deps --target` overlay
# beside the venv (its Lightning entry point adds callbacks to every Trainer that can see it: only PYTHONPATH=overlay
# sees it); its examples and benchmark scripts are unpacked from its source distribution into .spt-overlay/source.
SPT_OVERLAY := $(CURDIR)/.spt-overlay
SPT := $(SPT_OVERLAY)/.installed
$(SPT): scripts/install_spt_overlay.sh $(VENV)/.installed
	scripts/install_spt_overlay.sh $(PY) $(SPT_OVERLAY)
	touch $@

# The main job (benchmarks/demo.py, over the training toolkit of benchmarks/toolkit/, outside the wheel).
demo: setup
	$(PY) -m benchmarks.demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# mypy over essl_aug/ and adapters/ (the files and the settings: [tool.mypy] in pyproject.toml)
typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck

# The solo-learn guide's install recipe on a fresh venv (its own torch: a few minutes), then its CPU smoke test.
solo-recipe:
	SOLO_LEARN_SRC=$(SOLO_SRC) scripts/check_solo_recipe.sh

# Build the sdist and the wheel, twine check them, check their content, install the wheel into a fresh venv (its
# own torch: a few minutes) and import every module from it.
dist-check: setup
	scripts/check_dist.sh $(PY)

# pytest exits 5 when it collected nothing: a wrong test path, never a pass.
test-core: setup system-deps
	$(PY) -m pytest -q || { rc=$$?; [ $$rc -ne 5 ] || echo "error: pytest collected no tests (exit 5)" >&2; exit $$rc; }

# The adapter against real solo-learn (its classes, and its own main_pretrain.py run in subprocesses), then
# solo-learn's own method tests with the E-SSL classes swapped in: a separate pytest call (solo-learn's `tests`
# package would shadow ours), run from a scratch folder, writing no bytecode into the clone. Without the clone both
# are skipped with the reason (the overlay is not installed); under CI (CI=true) that is an error.
SOLO_SESSION := SOLO_LEARN_SRC=$(SOLO_SRC) ESSL_SOLO_OVERLAY=$(SOLO_OVERLAY) $(PY) -m pytest -q -p no:cacheprovider \
	tests/adapters/test_solo_learn.py tests/adapters/test_solo_learn_pretrain.py tests/adapters/test_solo_learn_resume.py \
	tests/adapters/test_solo_learn_multicrop.py
SOLO_OWN_TESTS := PYTHONPATH=$(SOLO_OVERLAY):$(SOLO_SRC):$(CURDIR)/tests/adapters PYTHONDONTWRITEBYTECODE=1 \
	$(PY) -m pytest -q -p no:cacheprovider -c /dev/null --rootdir . -p solo_learn_swap_plugin \
	$(foreach m,$(SOLO_METHOD_TESTS),$(SOLO_SRC)/tests/methods/test_$(m).py)

test-solo: setup
	@if [ -d "$(SOLO_SRC)/solo" ]; then \
	  $(MAKE) --no-print-directory $(SOLO) && \
	  echo '$(SOLO_SESSION)' && $(SOLO_SESSION) && \
	  mkdir -p $(SOLO_OVERLAY)/run && cd $(SOLO_OVERLAY)/run && \
	  echo '$(SOLO_OWN_TESTS)' && $(SOLO_OWN_TESTS); \
	elif [ "$$CI" = true ]; then echo "error: no solo-learn clone at $(SOLO_SRC); CI runs its tests" >&2; exit 1; \
	else echo "skipped the solo-learn tests: no solo-learn clone at $(SOLO_SRC) (set SOLO_LEARN_SRC)"; fi

# The stable-pretraining adapter against the real framework (the overlay on PYTHONPATH): its tests, the edit of
# spt's own SimCLR script, a 2-process gloo DDP run, the adapter's doctests and the guide's code block. The core
# session leaves these out (tests/adapters/conftest.py); without the overlay this session cannot run.
SPT_SESSION := ESSL_SPT_OVERLAY=$(SPT_OVERLAY) PYTHONPATH=$(SPT_OVERLAY) $(PY) -m pytest -q -p no:cacheprovider \
	tests/adapters/test_stable_pretraining.py tests/adapters/test_stable_pretraining_example.py \
	tests/adapters/test_doctests.py tests/docs/test_guides.py -k stable_pretraining

test-spt: setup $(SPT)
	$(SPT_SESSION)

test: test-core test-solo test-spt

clean:
	rm -rf $(VENV) .solo-overlay .solo-overlay-head .spt-overlay .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist

# The documentation site (Sphinx + MyST), warnings as errors: broken references and undocumented public names fail.
.PHONY: docs
$(VENV)/.docs-installed: $(VENV)/.installed
	$(PIP) install -q -e ".[docs]"
	touch $@

# The stable-pretraining overlay on the path: the adapter's Module is then documented with its real base class.
docs: $(VENV)/.docs-installed $(SPT)
	PYTHONPATH=$(SPT_OVERLAY) $(PY) -m sphinx -W --keep-going -b html docs docs/_build/html
