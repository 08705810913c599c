# Stow — see README.md. `make help` lists the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
PKGS  := ./...
# The version stamped into the binaries (hack/version.sh): VERSION=v0.3.0 make build.
export VERSION ?= dev

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z0-9_-]+:.*## /{printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build stow-operator, stow and kubectl-stow into ./bin (VERSION=... stamps a version).
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$$(bash hack/version.sh --ldflags)" -o $(BIN)/ ./cmd/...

.PHONY: image
image: ## Build the image for this machine into _output/stow-image.tar (PUSH=REF: an amd64+arm64 index pushed to REF instead).
	@if [ -n "$(PUSH)" ]; then bash hack/build-image.sh --push "$(PUSH)"; else bash hack/build-image.sh; fi

.PHONY: release
release: ## VERSION=vX.Y.Z REGISTRY=ghcr.io/you: push the amd64+arm64 image, point deploy/ and the chart at it, build the plugin archives (hack/release.sh).
	bash hack/release.sh

.PHONY: generate
generate: ## Regenerate deepcopy, client/ and deploy/crds.
	bash hack/update-codegen.sh

.PHONY: verify
verify: lint ## Fail if generated files are stale, code is unformatted or vet fails.
	bash hack/verify-codegen.sh

.PHONY: lint
lint: ## go vet and a gofmt check.
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

.PHONY: tools
tools: ## Build the pinned restic, MinIO and helm into ~/.cache/stow/bin.
	bash hack/tools.sh
	bash hack/tools.sh helm

.PHONY: test-unit
test-unit: ## Unit tests only (no external processes, no cluster).
	$(GO) test -short -count=1 $(PKGS)

.PHONY: test-integration
test-integration: tools ## Unit plus restic + MinIO integration tests.
	$(GO) test -count=1 -timeout 30m $(PKGS)

.PHONY: test-e2e
test-e2e: ## End-to-end suite on the local cluster (started if needed; stopped after if it started it).
	bash hack/e2e.sh

.PHONY: test
test: verify test-integration test-e2e ## Generated code and formatting checks, then unit, integration (restic + MinIO) and e2e tests.

.PHONY: bench
bench: ## Benchmarks, not part of test: BENCH_SCALE=full|small BENCH_RUNS=3 (BENCH_CLUSTER=local adds the control plane on the local cluster); writes bench/results.md.
	bash hack/bench.sh

.PHONY: demo
demo: ## Local cluster, deploy Stow, back up and restore a demo PVC, print what happened.
	bash hack/demo.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and restore the host.
	bash hack/local-cluster.sh down
