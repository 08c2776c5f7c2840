#!/usr/bin/env bash
# Build real seL4 16.0.0 and sel4test as an oracle for Keel, OUTSIDE this repository.
#
# It fetches nothing: give it a directory laid out as seL4's `repo` tool would make it
# (see docs/sel4-oracle.md for the repositories and commits), e.g.
#
#   SRC/kernel  SRC/tools/seL4  SRC/tools/nanopb  SRC/projects/{seL4_libs,musllibc,sel4runtime,
#   sel4test,util_libs,sel4_projects_libs}  SRC/init-build.sh  SRC/easy-settings.cmake
#
# Usage:
#   build-sel4.sh SRC BUILD [release|debug] [extra -D options...]   configure + build sel4test
#   build-sel4.sh --pack BUILD ROOT_TASK_ELF OUT_IMAGE                pack any root task with
#                                                                    BUILD's kernel + elfloader
#   build-sel4.sh --dtb OUT.dtb                                      dump QEMU's device tree
#
# Nothing built here may be committed to the project.
set -euo pipefail

die() { echo "build-sel4.sh: $*" >&2; exit 2; }

qemu_machine="virt,secure=off,virtualization=on,gic-version=3"

case "${1:-}" in
--dtb)
    out=${2:?OUT.dtb}
    # -nic none: without it QEMU looks for efi-virtio.rom and fails.
    qemu-system-aarch64 -machine "$qemu_machine,dumpdtb=$out" -cpu cortex-a53 -smp 1 -m 1024 \
        -nographic -nic none
    exit 0
    ;;
--pack)
    # Reuses a configured sel4test build: the app binary is replaced by ROOT_TASK_ELF (newer
    # than its inputs, so ninja keeps it) and only the elfloader image is rebuilt.
    build=${2:?BUILD}; rt=${3:?ROOT_TASK_ELF}; out=${4:?OUT_IMAGE}
    [ -f "$build/build.ninja" ] || die "$build is not a configured build directory"
    cp "$rt" "$build/apps/sel4test-driver/sel4test-driver"
    touch "$build/apps/sel4test-driver/sel4test-driver"
    ninja -C "$build" images/sel4test-driver-image-arm-qemu-arm-virt
    cp "$build/images/sel4test-driver-image-arm-qemu-arm-virt" "$out"
    echo "$out"
    exit 0
    ;;
esac

src=$(realpath "${1:?SRC}")
build=${2:?BUILD}
variant=${3:-release}
shift 3 || shift $#
[ -x "$src/init-build.sh" ] || die "$src/init-build.sh missing (symlink to tools/seL4/cmake-tool/init-build.sh)"
case "$variant" in
release) rel=ON ;;
debug) rel=OFF ;;
*) die "variant must be release or debug" ;;
esac

mkdir -p "$build"
build=$(realpath "$build")
dtb="$build/virt.dtb"
[ -f "$dtb" ] || "$0" --dtb "$dtb"

cd "$build"
# cortex-a53: 40-bit physical addresses (seL4_VSpaceBits 13), the ABI Keel implements.
"$src/init-build.sh" -DPLATFORM=qemu-arm-virt -DAARCH64=TRUE -DARM_CPU=cortex-a53 -DARM_HYP=ON \
    -DMCS=ON -DRELEASE="$rel" -DSIMULATION=ON -DQEMU_GIC_VERSION=3 -DQEMU_DTB="$dtb" \
    -DCROSS_COMPILER_PREFIX=aarch64-linux-gnu- "$@"
ninja
echo "root task ELF (for keel image --root-task): $build/apps/sel4test-driver/sel4test-driver"
echo "elfloader image (real seL4):                $build/images/sel4test-driver-image-arm-qemu-arm-virt"
echo "boot it: qemu-system-aarch64 -machine virt,virtualization=on,gic-version=3 -cpu cortex-a53" \
    "-m 1G -nographic -nic none -kernel IMAGE"
