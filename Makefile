# Every target sets up what it needs itself: a fresh machine needs only Python 3.11+, make and PyPI.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev
PREVIEW_ARGS ?=  # more options for `python -m offline preview`, e.g. --sarif FILE or --json
REQUIREMENTS := requirements.txt requirements-dev.txt policies/requirements.txt handlers/requirements.txt
PACK_VENV := policies/venv
PACK_STAMP := $(PACK_VENV)/.installed

.PHONY: preview test lint bench docs clean postgres migrate pack-venv mutation checkov

preview: $(STAMP) $(PACK_STAMP)  ## synthesize STACK offline and run the policy pack over it (in its own virtualenv)
	$(BIN)/python -m offline preview --stack $(STACK) $(PREVIEW_ARGS)

test: $(STAMP) $(PACK_STAMP) postgres  ## the whole test suite; pytest's exit code 5 (no tests collected) is a broken suite, not a pass
	@$(BIN)/python -m pytest; status=$$?; \
	if [ $$status -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$status

lint: $(STAMP)  ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy components offline policies/rules handlers benchmarks ops

bench: $(STAMP)  ## benchmarks, each printing ratios measured side by side in one run
	$(BIN)/python -m benchmarks.offline_preview
	$(BIN)/python -m benchmarks.policy_pack
	$(BIN)/python -m benchmarks.file_ingestion
	$(BIN)/python -m benchmarks.event_processing
	$(BIN)/python -m benchmarks.packaging
	$(BIN)/python -m benchmarks.batch_inference
	$(BIN)/python -m benchmarks.sharder_linearity
	$(BIN)/python -m benchmarks.kb_sync

mutation: $(STAMP) $(PACK_STAMP) postgres  ## mutation testing (slow, outside CI): cosmic-ray over pyproject's [tool.mutation] groups; GROUPS="a b" for some
	$(BIN)/python -m tools.mutation $(foreach g,$(GROUPS),--group $(g))

CHECKOV_VENV := .build/checkov-venv
checkov: $(STAMP)  ## checkov's Terraform-plan checks over both shipped stacks; fails on a failure not skipped with a reason (tools/checkov_skips.json)
	test -x $(CHECKOV_VENV)/bin/checkov || { $(PYTHON) -m venv $(CHECKOV_VENV) && $(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30; }
	$(BIN)/python -m tools.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov

pack-venv: $(STAMP) $(PACK_STAMP)  ## the policy pack's own virtualenv (policies/venv), where the Pulumi CLI runs the pack

docs: $(STAMP)  ## regenerate the generated parts of README.md and policies/README.md
	$(BIN)/python -m tools.docs

postgres:  ## PostgreSQL server binaries for the tests (the suite starts its own throwaway server): Debian's package
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's postgresql package for the test suite"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's postgresql package" \
		"(sudo apt-get install -y postgresql) and run make test again" >&2; exit 1; fi

migrate: $(STAMP)  ## apply the file-ingestion migrations to DATABASE_URL (or SECRET_ID=<Secrets Manager secret>)
	PYTHONPATH=handlers $(BIN)/python -m file_ingestion_migrate $(if $(SECRET_ID),--secret-id $(SECRET_ID))

# The policy pack's own virtualenv, where `pulumi preview --policy-pack policies` runs it (PulumiPolicy.yaml
# runtime.options.virtualenv), installed as `pulumi install` in policies/ would: only the pack's requirements.
$(PACK_STAMP): policies/requirements.txt
	test -x $(PACK_VENV)/bin/python || $(PYTHON) -m venv $(PACK_VENV)
	$(PACK_VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(PACK_VENV)/bin/python -m pip install --quiet -r policies/requirements.txt
	touch $(PACK_STAMP)

$(STAMP): $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(PACK_VENV) .build .pytest_cache .mypy_cache .ruff_cache
