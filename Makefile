# `make run`: set up and start the whole platform with demo data.
# `make test`: install test dependencies and run the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test soak flake-hunt lint typecheck install install-test system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip > /dev/null 2>&1 || true

# pip's build chatter goes to a log; it is shown only if the install fails.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "installing the platform into $(VENV) ..."
	@$(BIN)/python -m pip install -q -e . > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	@echo "installing the platform and its test dependencies into $(VENV) ..."
	@$(BIN)/python -m pip install -q -e ".[test]" > $(VENV)/install.log 2>&1 || (cat $(VENV)/install.log; exit 1)
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test system-packages

# Programs the suite drives for real, from Debian's packages, installed when missing (as root, or
# through sudo): Chromium for the console's browser tests (tests/console; Playwright cannot download
# its own browser here), HAProxy in front of several nodes (tests/scaling), mosquitto_sub as a second
# MQTT client over TLS (tests/tls), PgBouncer in transaction mode in front of PostgreSQL (tests/ops/test_pgbouncer.py),
# stress-ng as the CPU hog of `make flake-hunt`, a C compiler and libsodium for the reference verifier of
# signed announcements that firmware vendors are given (docs/announcement-signing.md, tests/announcements).
# Each entry is a file the package installs, then the package.
SYSTEM_PACKAGES := /usr/bin/chromium:chromium /usr/sbin/haproxy:haproxy /usr/bin/mosquitto_sub:mosquitto-clients \
	/usr/sbin/pgbouncer:pgbouncer /usr/bin/stress-ng:stress-ng /usr/bin/cc:gcc /usr/include/sodium.h:libsodium-dev
system-packages:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do \
	test -e "$${entry%%:*}" || missing="$$missing $${entry#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing for the tests ..."; \
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	$$SUDO apt-get install -y -q $$missing > /dev/null 2>&1 || \
	{ $$SUDO apt-get update -q > /dev/null && $$SUDO apt-get install -y -q $$missing > /dev/null; }; fi

# One process: on 2 cores shared with PostgreSQL, a second API process gained nothing once the payment
# path was cheap (docs/operations.md); `make run SERVE_WORKERS=2` starts the supervised layout.
SERVE_WORKERS ?= 1
# `make run PORT=8100 MQTT_PORT=1884`: other HTTP and MQTT ports (a busy port's refusal names these).
PORT ?=
MQTT_PORT ?=
run: install
	$(BIN)/qris-soundbox serve --demo --workers $(SERVE_WORKERS) $(if $(PORT),--http-port $(PORT)) $(if $(MQTT_PORT),--mqtt-port $(MQTT_PORT))

# Formatting and lint (ruff), then types (mypy), then the suite.
# pytest exits 5 when it collected nothing: an empty suite is a failure, not a pass.
test: lint typecheck
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# The soaks `make test` leaves out (the `soak` marker): a 200-device soak, killed past 15 minutes.
soak: install-test
	$(BIN)/python -m pytest -m soak tests/bench

# The suite (or PYTEST_ARGS) RUNS times with one core kept busy; lists every test that failed in any run
# and fails if there is one (docs/testing.md).
RUNS ?= 5
flake-hunt: install-test
	$(BIN)/python -m tests.flake_hunt --runs $(RUNS) -- $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff format --check --quiet .
	$(BIN)/ruff check --quiet .

# mypy checks the package as it is installed (qris_soundbox.*): the top-level folders are linked
# under that name in $(VENV)/typecheck, which [tool.mypy] puts on its path.
PACKAGE_DIRS := core broker plugins control_plane tools acl sql
typecheck: install-test
	@mkdir -p $(VENV)/typecheck/qris_soundbox
	@for d in $(PACKAGE_DIRS); do ln -sfn ../../../$$d $(VENV)/typecheck/qris_soundbox/$$d; done
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache
