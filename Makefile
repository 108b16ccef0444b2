# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Each one creates or updates the virtual environment it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean browser faults audit

$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	@$(VENV)/bin/python -m pip install --quiet --upgrade pip
	@$(VENV)/bin/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/netquality demo $(ARGS)

# Browser tests drive Debian's headless Chromium; install it when missing (needs root or sudo).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) browser
	$(VENV)/bin/ruff check pipelines tests benchmarks migrations tools
	$(VENV)/bin/python -m pytest $(ARGS)

# Reliability: the fault suite at full size (docs/reliability.md quotes its var/faults/*.json);
# `make test` runs it CI-sized. Audit: known vulnerabilities in the installed dependencies.
faults: $(STAMP)
	NETQUALITY_FAULTS_SCALE=full $(VENV)/bin/python -m pytest tests/faults $(ARGS)

audit: $(STAMP)
	$(VENV)/bin/python tools/audit.py $(ARGS)

bench: $(STAMP)
	$(VENV)/bin/netquality bench $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis var
