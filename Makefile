# rampart: the two commands are `make demo` and `make test`; both set up a fresh machine first.
SHELL := /bin/bash
CARGO ?= cargo
CARGO_FLAGS ?=
export RAMPART_NODE_DIR ?= /var/lib/rampart-node
export RAMPART_CRI_SOCKET ?= $(RAMPART_NODE_DIR)/containerd.sock

.PHONY: all setup build demo test unit lint fuzz-smoke bench node-up node-down node-status node-purge clean

all: build

## setup: Debian packages the node and the build need (root, idempotent)
setup:
	scripts/setup-node

## build: every crate and test binary
build: setup
	$(CARGO) build $(CARGO_FLAGS) --workspace --all-targets

## demo: a local node, the nginx pod, and what happens when it reads /etc/passwd
demo: build
	scripts/demo

## test: setup, build, unit tests, then the node tests against a real containerd
test: build
	scripts/test

## unit: tests that need neither root nor the node
unit:
	$(CARGO) test $(CARGO_FLAGS) --workspace

## bench: what rampart costs against the same pods with no policy, in one run: nginx requests/s
## and p99 under rampart's policies, and syscall latency loops in busybox pods (root, node up;
## bench/native-speed.sh, BENCH_ARGS="--doc --rounds N", "--only nginx|loops" for a quick run).
## Release builds: debug ones would measure unoptimised code.
BENCH_ARGS ?=
bench: setup
	$(CARGO) build --release $(CARGO_FLAGS) -p rampartd -p rampart-seccomp -p rampart-nri -p rampart-integration --bins
	RAMPART_BIN=$${CARGO_TARGET_DIR:-target}/release bench/native-speed.sh $(BENCH_ARGS)
	RAMPART_BIN=$${CARGO_TARGET_DIR:-target}/release bench/auditor-overhead.sh $(AUDITOR_ARGS)

## fuzz-smoke: a short run of every fuzz target (needs nightly; skipped without it)
fuzz-smoke:
	scripts/fuzz-smoke

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings

node-up: setup
	scripts/node up
node-down:
	scripts/node down
node-status:
	scripts/node status
node-purge:
	scripts/node purge

clean: node-down
	$(CARGO) clean
