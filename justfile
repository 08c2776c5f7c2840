# Keel's recipes: one-line wrappers around the `keel` host tool (tools/keel).
# `just run` boots the default system; `just test` runs every test. See README.md.

set shell := ["bash", "-euo", "pipefail", "-c"]

keel := "cargo run -q -p keel --"

# List the recipes.
default:
    @just --list

# Install QEMU if missing and check the aarch64-unknown-none target (idempotent).
setup:
    {{keel}} setup

# Check a system file and report every error (code, file:line:column, caret); exit 1 on errors.
check FILE:
    {{keel}} check "{{FILE}}"

# Build the default system (system.cdl) into target/keel/system.elf and print its size table.
build *args:
    {{keel}} build {{args}}

# Build and boot the default system (system.cdl) in QEMU; ARGS go to `keel run`.
run *args: setup
    {{keel}} run {{args}}

# All tests: host and system tests, conformance suite, loader test, 10^6 fuzzer operations.
test: setup
    KEEL_REQUIRE_QEMU=1 cargo test --workspace --exclude conformance --exclude bench --exclude fuzz
    {{keel}} conformance
    {{keel}} loader-test
    {{keel}} fuzz --ops 1000000

# Boot the conformance suite; fails unless it ends with `N passed, 0 failed`.
conformance:
    {{keel}} conformance

# The sequence fuzzer (OPS operations, seed SEED) on a kernel with the invariant checker.
fuzz OPS="1000000" SEED="0x5EEDCAFEF00D0001" *args:
    {{keel}} fuzz --ops {{OPS}} --seed {{SEED}} {{args}}

# Benchmarks under -icount (kernel paths, system boot, image size); writes target/bench.json.
bench:
    {{keel}} bench
