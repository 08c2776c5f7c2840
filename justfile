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

# All tests: lint and format gates, host and system tests (the Linux guest booted directly
# too), conformance suite (several machines and an overflow-checked kernel), loader test,
# 10^6 fuzzer operations.
test: setup lint guest
    KEEL_REQUIRE_QEMU=1 KEEL_REQUIRE_GUEST=1 cargo test --workspace --exclude conformance --exclude bench --exclude fuzz
    cargo test -p sel4-sys -p qemu-virt -p keel-kernel --features pa44
    {{keel}} conformance
    {{just_executable()}} conformance-checked
    {{keel}} conformance --memory 512M
    {{keel}} conformance --memory 2G
    {{keel}} conformance --pa44
    {{keel}} loader-test
    {{keel}} build
    # The default system's kernel has no debug system calls: a root task's DebugPutChar (-12)
    # is an UnknownSyscall fault there.
    {{keel}} run -p conformance --kernel "$({{keel}} build-kernel)" --timeout 60 --exit-on-expect \
        --expect "stopped: UnknownSyscall { number: 18446744073709551604 }"
    {{keel}} fuzz --ops 1000000

# Fetch the Linux guest (Debian's current bookworm arm64 kernel and busybox-static) into
# ~/.cache/keel/guest and build its initramfs; does nothing when it is there. ARGS go to
# `keel guest fetch` (e.g. `--update` for a newer kernel). See images/linux/README.md.
guest *args:
    {{keel}} guest fetch {{args}}

# Boot the Linux guest directly in QEMU (no Keel), its shell on this terminal; Ctrl-A x quits.
guest-boot: setup guest
    {{keel}} guest boot

# Boot the conformance suite; fails unless it ends with `N passed, 0 failed`. ARGS go to
# `keel conformance` (e.g. `--memory 2G`).
conformance *args:
    {{keel}} conformance {{args}}

# The conformance suite on a kernel built with arithmetic overflow checks (a wrap panics).
conformance-checked:
    cargo build -q -p keel-kernel --target aarch64-unknown-none --profile release-checked --features debug-syscalls
    {{keel}} conformance --kernel "${CARGO_TARGET_DIR:-target}/aarch64-unknown-none/release-checked/keel-kernel"

# The sequence fuzzer (OPS operations, seed SEED) on a kernel with the invariant checker.
fuzz OPS="1000000" SEED="0x5EEDCAFEF00D0001" *args:
    {{keel}} fuzz --ops {{OPS}} --seed {{SEED}} {{args}}

# Benchmarks under -icount (kernel paths, system boot, image size); writes target/bench.json.
bench:
    {{keel}} bench

# Gates: clippy with warnings denied over the whole workspace (components too), then again on
# the seL4 target for the code only it compiles (the loader's boot path, the kernel entry
# stubs), where the panic-free lints of components and shared crates must hold too; then rustfmt.
lint:
    cargo clippy --workspace --all-targets -- -D warnings
    cargo clippy --target aarch64-unknown-none -p loader -p supervisor -p console -p hello -p client -p server -p server-protocol -p vcpu -p vmm -p vmm-protocol -p keel-component -p sel4 -p sel4-rt -p keel-plan -p keel-spec -- -D warnings
    cargo clippy --target aarch64-unknown-none -p test-guests -- -D warnings
    cargo fmt --all --check
