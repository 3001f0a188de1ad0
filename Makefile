# stancekit: `make run` (set-up + main job) and `make test` (set-up + tests) on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARTIFACT ?= artifacts/default
RUN_CONFIG ?= configs/quick.yaml
PROFILES ?= profiles
STAMP := $(VENV)/.stancekit-installed

.PHONY: setup run test train lint clean browser

# torch is installed first and pinned: 2.13.0 resolves to the CPU wheel here, while an
# unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

$(ARTIFACT)/manifest.json: | $(STAMP)
	$(BIN)/stancekit train --config $(RUN_CONFIG) --out $(ARTIFACT)

run: $(STAMP) $(ARTIFACT)/manifest.json
	$(BIN)/stancekit profile data/samples --artifact $(ARTIFACT) --out $(PROFILES)

train: $(STAMP)
	$(BIN)/stancekit train --config configs/default.yaml --out artifacts/default

# Headless Chromium for the report/article-view browser tests (Debian package; needs root).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(PROFILES) reports .pytest_cache
