# emrops: the repository's entry points. `make demo` and `make test` are the two that matter;
# both install what they need (the virtualenv in .venv, the control plane in ~/.cache/emrops).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

VENV := .venv
BIN := $(VENV)/bin
# python3.11 when installed, else python3 (checked to be >= 3.11 below).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
HELM_BIN := $(or $(EMROPS_CACHE_DIR),$(HOME)/.cache/emrops)/helm-v3.22.0/bin

# Builds (once) or finds kube-apiserver, etcd and kubectl; its progress goes to stderr and its
# last line is `KUBEBUILDER_ASSETS=<folder>`, which this exports along with PATH for kubectl/helm.
WITH_CONTROL_PLANE = assets_line="$$(hack/control-plane.sh | tail -n 1)" && export "$$assets_line" \
	&& export PATH="$$KUBEBUILDER_ASSETS:$(HELM_BIN):$$PATH"

.PHONY: help
help:
	@echo "make demo           run the demo: local control plane + EMR emulator + operator"
	@echo "make test           lint, then the whole test suite against a real kube-apiserver"
	@echo "make test-unit      unit tests only (no servers, seconds)"
	@echo "make lint           ruff, ruff format --check, mypy, import-linter"
	@echo "make control-plane  build or find kube-apiserver, etcd, kubectl (and helm)"
	@echo "make argocd-lua     build or find the Argo CD Lua harness (gopher-lua, as Argo CD runs it)"
	@echo "make image          build the operator image with podman (localhost/emrops:<appVersion>)"
	@echo "make promtool       build or find promtool (checks and unit-tests the chart's alerts)"
	@echo "make venv           create $(VENV) and install emrops with its dev extras"
	@echo "make e2e            a real one-node cluster here (root): the chart and the image end to end"
	@echo "make bench | soak   benchmarks, long-running tests"
	@echo "make docs           regenerate docs/ from the CRD and the error table"
	@echo "make manifests      sync the chart's CRDs, regenerate Argo CD and rendered manifests"
	@echo "make clean          remove caches (distclean: also $(VENV))"

# --- environment -------------------------------------------------------------------------------

.PHONY: venv
venv: $(VENV)/.installed

# Reinstalls only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: python3.11 (or python3 >= 3.11) is required" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "make: $(PYTHON) is older than 3.11; install python3.11" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

.PHONY: control-plane
control-plane:
	hack/control-plane.sh

# The Go harness that runs deploy/argocd's Lua as Argo CD does (hack/argocd-lua/), cached in
# ~/.cache/emrops/argocd-lua/; the tests that need it build it themselves when it is missing.
.PHONY: argocd-lua
argocd-lua:
	hack/argocd-lua.sh

# The operator image from deploy/Dockerfile, built with podman on a Debian base made with
# debootstrap (no registry needed), both cached in ~/.cache/emrops/; rebuilt only when its inputs
# change. Its last lines name the image and its OCI archive (IMAGE=..., IMAGE_ARCHIVE=...).
.PHONY: image
image:
	hack/image.sh

# promtool, built from the Prometheus Go module into ~/.cache/emrops/promtool-<version>/: it checks
# and unit-tests the chart's PrometheusRule. `make test` builds it first when missing (a cold build
# takes minutes, longer than one test may), so the tests find it cached.
.PHONY: promtool
promtool:
	hack/promtool.sh

# --- the two commands --------------------------------------------------------------------------

.PHONY: demo
demo: venv
	@$(WITH_CONTROL_PLANE) && $(BIN)/emrops demo

# The suite runs on TEST_WORKERS pytest-xdist workers (each with its own control plane), whole files
# per worker (--dist loadfile: a file's module fixtures, its emulator and operators, start once). It
# mostly waits on processes, so 2 workers on 2 cores take about 11 min where 1 took 19. TEST_WORKERS=0
# runs it in one process.
TEST_WORKERS ?= 2

.PHONY: test
test: venv lint
	@$(WITH_CONTROL_PLANE) && hack/promtool.sh >/dev/null && export EMROPS_REQUIRE_CONTROL_PLANE=1 \
		&& status=0 && $(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS) || status=$$?; \
	if [ "$$status" -eq 5 ]; then echo "make test: pytest collected no tests; that is a failure" >&2; fi; \
	exit "$$status"

# --- the rest ----------------------------------------------------------------------------------

.PHONY: test-unit
test-unit: venv
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

# The deterministic simulation of the controller (tests/simulation/README.md): 1,000 seeds, or
# SEEDS=a-b (a range) / SEEDS=n (0..n-1) / SEED=k (one; TRACE=1 prints its full trace instead).
.PHONY: simulate
simulate: venv
	@export PYTHONHASHSEED=0 SEEDS="$(SEEDS)" SEED="$(SEED)"; \
	if [ -n "$(TRACE)" ] && [ -n "$(SEED)" ]; then PYTHONPATH=tests $(BIN)/python -m simulation $(SEED); \
	else $(BIN)/pytest -m simulation tests/simulation $(PYTEST_ARGS); fi

.PHONY: lint
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# A real one-node cluster on this machine (tests/e2e, docs/install.md "Tested end to end"): needs
# root. hack/node.sh builds or finds the node (kubelet, kube-proxy, containerd, ...), hack/image.sh
# the operator image (handed to the suite as EMROPS_E2E_IMAGE / EMROPS_E2E_IMAGE_ARCHIVE).
.PHONY: e2e
e2e: venv
	@test "$$(id -u)" = 0 || { echo "make e2e: needs root (a kubelet manages cgroups, mounts, networks)" >&2; exit 1; }
	@hack/node.sh >/dev/null && image_lines="$$(hack/image.sh | tail -n 2)" && $(WITH_CONTROL_PLANE) \
		&& export EMROPS_E2E_IMAGE="$$(sed -n 's/^IMAGE=//p' <<<"$$image_lines")" \
		&& export EMROPS_E2E_IMAGE_ARCHIVE="$$(sed -n 's/^IMAGE_ARCHIVE=//p' <<<"$$image_lines")" \
		&& export EMROPS_REQUIRE_CONTROL_PLANE=1 && $(BIN)/pytest -m e2e tests/e2e -s $(PYTEST_ARGS)

# `make bench QUICK=1`: small counts, under 3 minutes; BENCH_ARGS passes anything else to bench/run.py.
.PHONY: bench
bench: venv
	@if [ -f bench/run.py ]; then $(if $(findstring --allocator=python,$(BENCH_ARGS)),,hack/jemalloc.sh &&) \
		$(WITH_CONTROL_PLANE) && $(BIN)/python bench/run.py $(if $(QUICK),--quick) $(BENCH_ARGS); \
	else echo "make bench: not yet implemented" >&2; exit 1; fi

# The suites read EMROPS_SOAK=1 and use larger counts (tests/fixtures/suites.py); then the one-node
# cluster (make e2e), which is not in make test / .ci/run: on a new machine its builds alone
# (node ~17 min, image ~9 min on 2 cores) would take CI past its time budget.
.PHONY: soak
soak: venv
	@if grep -rqs EMROPS_SOAK bench tests; then $(WITH_CONTROL_PLANE) \
		&& export EMROPS_REQUIRE_CONTROL_PLANE=1 EMROPS_SOAK=1 && $(BIN)/pytest $(PYTEST_ARGS); \
	else echo "make soak: not yet implemented" >&2; exit 1; fi
	$(MAKE) e2e

# Files derived from others (tests fail when they are stale): docs from the CRD and the error
# table; the chart's CRD copy, the Argo CD ConfigMap and the rendered manifests.
.PHONY: docs
docs: venv
	$(BIN)/python hack/gen_docs.py

.PHONY: manifests
manifests: venv
	hack/sync-chart-crds.sh
	$(BIN)/python hack/gen_argocd_cm.py
	@$(WITH_CONTROL_PLANE) && hack/render-manifests.sh

# Pins of deploy/requirements.lock (the container image) from the venv's installed versions.
.PHONY: lock
lock: venv
	$(BIN)/python hack/lock-requirements.py

.PHONY: clean
clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache .hypothesis .import_linter_cache build dist
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 \
		| xargs -0 rm -rf

.PHONY: distclean
distclean: clean
	rm -rf $(VENV)
