# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Each one creates or updates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean browser native faults audit

# The engine's unit and property tests, run a second time on the pure-Python core (the first,
# full run uses the compiled one when the install built it; see docs/architecture.md, "Compiled core").
ENGINE_TESTS := tests/unit/quality/test_engine_rules.py tests/unit/quality/test_engine_properties.py \
	tests/unit/quality/test_engine_batch.py tests/unit/test_scorer.py

# Test processes: each starts its own embedded broker and Postgres. The suite mostly waits on
# them and on worker processes, so three share two cores (`make test TEST_PROCESSES=0`: serial).
TEST_PROCESSES ?= 3

$(STAMP): pyproject.toml setup.py
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@$(VENV)/bin/python -c "from pipelines.quality import _native; print('netquality scoring core:', _native.CHOICE.reason)"
	@touch $(STAMP)

# Recompile the scoring core after editing it (until then it runs as pure Python, with a warning).
native: $(STAMP)
	@$(VENV)/bin/python -m pip install --quiet --no-deps -e .
	@$(VENV)/bin/python -c "from pipelines.quality import _native; print('netquality scoring core:', _native.CHOICE.reason)"

demo: $(STAMP)
	$(VENV)/bin/netquality demo $(ARGS)

# Browser tests drive Debian's headless Chromium, and the JS client's tests run under Node.js;
# install whichever is missing (needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 && command -v node >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq \
			$$(command -v chromium >/dev/null 2>&1 || echo chromium) \
			$$(command -v node >/dev/null 2>&1 || echo nodejs) >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check pipelines tests benchmarks migrations setup.py tools
	@# Known vulnerabilities: red only when some are found; says NOT CHECKED when it cannot look.
	$(VENV)/bin/python tools/audit.py
	@# The JS client (clients/js): its unit tests and the freshness of its committed builds.
	node --test clients/js/test/*.test.js
	NETQUALITY_PURE_PYTHON=1 $(VENV)/bin/python -m pytest -q $(ENGINE_TESTS)
	$(VENV)/bin/python -m pytest -n $(TEST_PROCESSES) --dist worksteal $(ARGS)

# Reliability: the fault suite at full size (docs/reliability.md quotes its var/faults/*.json);
# `make test` runs it CI-sized. Audit: known vulnerabilities in the installed dependencies.
faults: $(STAMP)
	NETQUALITY_FAULTS_SCALE=full $(VENV)/bin/python -m pytest tests/faults $(ARGS)

audit: $(STAMP)
	$(VENV)/bin/python tools/audit.py $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/netquality bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis var build pipelines/quality/*.so pipelines/quality/_native.json
