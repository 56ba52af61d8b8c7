# chaos-drill: `make demo` runs a real drill, `make test` passes the tests; both set up first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := containerd runc containernetworking-plugins busybox-static \
	iptables iproute2 conntrack prometheus curl chromium tmux
PYTEST_ARGS ?=
CACHE := $(or $(CHAOS_DRILL_CACHE),$(HOME)/.cache/chaos-drill)
WHEELHOUSE := $(CACHE)/wheelhouse

.PHONY: setup apt registry venv wheelhouse kubernetes kind operator-image prometheus-image test test-kind unit e2e lint bench demo down clean

# make setup KIND=1 also makes kind (below)
setup: apt registry venv kubernetes $(if $(KIND),kind)

apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "==> installing Debian packages:" $$missing; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "==> Debian packages present"; fi

# Debian's docker-registry for the registry tests, its own service disabled (tests run their own)
registry: apt
	@bash cluster/registry/install.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	@echo "==> Python virtualenv in $(VENV)"
	@test -x $(PY) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# The dependencies' wheels, so a test installs the built wheel into a fresh virtualenv offline,
# with what examples/kind-smoke installs beside it (tests/kind/test_pytest_kind.py); keyed by
# pyproject.toml's content and that list, so a fresh clone finds them.
SMOKE_PACKAGES := pytest pytest-kind pytest-timeout
WHEELHOUSE_KEY := $(shell (cat pyproject.toml; echo $(SMOKE_PACKAGES)) | sha256sum | cut -c1-12)
wheelhouse: $(WHEELHOUSE)/.complete-$(WHEELHOUSE_KEY)

$(WHEELHOUSE)/.complete-$(WHEELHOUSE_KEY): | venv
	@echo "==> dependency wheels in $(WHEELHOUSE)"
	@rm -rf $(WHEELHOUSE) && timeout 600 $(PY) -m pip download -q -d $(WHEELHOUSE) . $(SMOKE_PACKAGES) \
	  && touch $(WHEELHOUSE)/.complete $@

# Kubernetes v1.34, etcd 3.6, and the add-ons metrics-server v0.9.0 and CoreDNS v1.12.1, from
# Go modules into the cache (cluster/build/build.sh); warm, it only checks.
kubernetes:
	@command -v go >/dev/null || { echo "go not found: install Go 1.26 or newer" >&2; exit 2; }
	@bash cluster/build/build.sh

# kind, kubeadm, kubectl, crictl, CoreDNS, pause and the kind node image, from Go modules and
# Debian packages into the cache; installs docker.io without starting it. Not part of setup.
kind: venv kubernetes
	@command -v go >/dev/null || { echo "go not found: install Go 1.26 or newer" >&2; exit 2; }
	@command -v debootstrap >/dev/null || { echo "==> installing debootstrap"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	@bash cluster/kind/build.sh

# The operator's image (Debian's python3 + the pinned deps + chaos/) as an archive in the cache;
# `chaos-drill operator install` builds it too. Warm, it only checks.
operator-image: venv
	@command -v debootstrap >/dev/null || { echo "==> installing debootstrap"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	@bash cluster/operator/build.sh

# The in-cluster Prometheus's image (Debian's prometheus binary and the libraries it loads) as an
# archive in the cache; `chaos-drill monitor install` builds it too. Warm, it only checks.
prometheus-image: venv
	@command -v debootstrap >/dev/null || { echo "==> installing debootstrap"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
	@bash cluster/prometheus/build.sh

lint: venv
	$(VENV)/bin/ruff check chaos tests examples
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples/kind-smoke

test: setup kind operator-image prometheus-image wheelhouse lint
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# Only the kind tests (also part of `make test`): one kind cluster, brought up and down by pytest.
test-kind: setup kind wheelhouse lint
	$(VENV)/bin/pytest tests/kind -m kind $(PYTEST_ARGS)

unit: venv
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

# The e2e tests on the real local cluster (also part of `make test`).
e2e: setup kind operator-image prometheus-image wheelhouse lint
	$(VENV)/bin/pytest tests/e2e $(PYTEST_ARGS)

bench: setup kind
	$(VENV)/bin/pytest tests/bench -m bench -s -p no:randomly --timeout 3600 $(PYTEST_ARGS)

demo: setup
	$(VENV)/bin/chaos-drill demo

down: venv
	$(VENV)/bin/chaos-drill cluster down

clean: down
	rm -rf $(VENV)
