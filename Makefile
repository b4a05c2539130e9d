# Makefile — Remora's entry points, thin over Bazel. Every target installs what is missing first
# (scripts/setup.sh is quick when everything is there).
#
#   make test    build everything, run every test (unit, integration, fuzz smoke, lint);
#                ends with "N passed, N failed"
#   make demo    the whole mesh on this machine, telling its story in numbers
#   make bench   benchmarks against nginx and HAProxy; results land in bench/results/
#   make lint    clang-format check of every C file, clang-tidy on files changed from main
#   make fuzz    every libFuzzer target for FUZZ_SECONDS (default 300) each
#   make format  apply clang-format

BAZEL ?= bazel
FUZZ_SECONDS ?= 300

.PHONY: all setup build test demo bench lint fuzz format clean

all: build

setup:
	@scripts/setup.sh

build: setup
	$(BAZEL) build //...

test: setup
	@tests/run_all.sh

demo: setup build
	@scripts/demo.sh

bench: setup build
	@bench/run_all.sh

lint: setup
	@scripts/lint.sh

fuzz: setup
	@FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run_fuzzers.sh

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	$(BAZEL) clean
