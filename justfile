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

# Build the kernel and the default root task and pack them into target/keel/conformance.elf.
build:
    {{keel}} build

# Build and boot the default system in QEMU (today: the conformance root task).
run *args: setup
    {{keel}} run {{args}}

# Host tests of every crate, then the conformance suite under QEMU.
test: setup
    KEEL_REQUIRE_QEMU=1 cargo test --workspace --exclude conformance --exclude bench
    {{keel}} conformance

# Boot the conformance suite; fails unless it ends with `N passed, 0 failed`.
conformance:
    {{keel}} conformance

# Boot the benchmark root task under -icount; prints a table and writes target/bench.json.
bench:
    {{keel}} bench
