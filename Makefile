# minihpc: `make up` brings the service up, `make test` runs the test pyramid.
# Everything goes through the `minihpc` CLI installed (editable) into .venv.

PYTHON  ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
MINIHPC := $(BIN)/minihpc
STAMP   := $(VENV)/.installed-stamp
# `make ssh USER=bob CLUSTER=htc`: USER only counts when given on the command line
# (the environment's USER is the host user, who has no account on the cluster).
SSH_USER := $(if $(filter command line,$(origin USER)),$(USER),alice)
CLUSTER ?= arc
CONFIG  ?=
CONFIG_ARG := $(if $(CONFIG),--config $(CONFIG),)
# pytest exits 5 when a marker selects no test: that is not a failure here.
PYTEST  = $(BIN)/pytest

.PHONY: help venv up down clean status logs ssh test test-unit test-local test-cluster lint bench compose build host-deps

help:
	@echo "make up       build missing images, start clusters arc and htc, wait until ready"
	@echo "make down     remove the containers (networks and volumes kept)"
	@echo "make clean    also remove the volumes and generated keys"
	@echo "make status | logs [NODE=arc-login] | ssh [USER=alice CLUSTER=arc]"
	@echo "make test     ruff + mypy + unit + local + cluster tests"
	@echo "make bench    bring-up benchmark -> bench/results/"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

venv: $(STAMP)

up: $(STAMP)
	@$(MINIHPC) up $(CONFIG_ARG) $(ARGS)

build: $(STAMP)
	@$(MINIHPC) build $(CONFIG_ARG)

down: $(STAMP)
	@$(MINIHPC) down

clean: $(STAMP)
	@$(MINIHPC) clean

status: $(STAMP)
	@$(MINIHPC) status $(CONFIG_ARG)

logs: $(STAMP)
	@$(MINIHPC) logs $(NODE)

ssh: $(STAMP)
	@$(MINIHPC) ssh $(CONFIG_ARG) $(SSH_USER) --cluster $(CLUSTER)

compose: $(STAMP)
	@$(MINIHPC) compose

lint: $(STAMP)
	$(BIN)/ruff check orchestrator tests bench
	$(BIN)/mypy

test-unit: $(STAMP)
	$(PYTEST) -m unit tests/unit || [ $$? -eq 5 ]

# Local mode runs the real munged (and OpenMPI's mpirun for the srun tests) on this host.
HOST_PKGS := munge libmunge2 openmpi-bin libopenmpi-dev lmod
host-deps:
	@missing=$$(for p in $(HOST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "installing $$missing for the local tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "local tests need: sudo apt-get install $$missing"; fi; \
	fi

test-local: $(STAMP) host-deps
	@if [ -d tests/local ]; then $(PYTEST) -m local tests/local || [ $$? -eq 5 ]; fi

test-cluster: $(STAMP)
	$(PYTEST) -m cluster tests/cluster || [ $$? -eq 5 ]

# Every level runs even when an earlier one fails (a lint error must not hide test results);
# the exit status is non-zero if any failed.
test: $(STAMP)
	@rc=0; for t in lint test-unit test-local test-cluster; do \
	    echo "==> make $$t"; $(MAKE) --no-print-directory $$t || { rc=1; echo "==> make $$t FAILED"; }; \
	done; exit $$rc

bench: $(STAMP) host-deps
	$(BIN)/python bench/bringup.py $(ARGS)
	$(BIN)/python bench/scheduler.py --local
	$(BIN)/python bench/parallel.py --local
	@if docker inspect arc-login >/dev/null 2>&1; then \
	  $(BIN)/python bench/scheduler.py --cluster; \
	  $(BIN)/python bench/parallel.py --cluster; \
	  $(BIN)/python bench/modules.py --container arc-login --user alice --runs 15 || [ $$? -eq 3 ]; \
	fi
