#!/usr/bin/env bash
# Installs the Debian packages that building and testing Carapace need, if any are missing.
# Sourced by scripts/try.sh and scripts/test.sh; safe to run again.
set -euo pipefail

CARAPACE_PACKAGES=(
    build-essential   # gcc -static for the syscall test programs
    libc6-dev         # libc.a for static test binaries
    pkg-config
    libseccomp-dev    # the sentry's and gofer's seccomp allow-lists (libseccomp crate)
    python3           # the sandbox's done-when checks run python3 inside
    busybox-static    # a small static userland for rootfs tests
    stress-ng         # the processes-and-signals stress run inside the sandbox
    git sqlite3       # file-layer workloads inside the sandbox (tests/tests/fs_workloads.rs)
    libpython3.11-testsuite  # python's own file-system test modules inside the sandbox
    procps            # ps, run inside the sandbox over its /proc
    containerd        # tests/tests/containerd.rs: a private containerd drives containerd-shim-carapace-v1
    umoci skopeo      # ... and the busybox OCI image it imports, built locally
    iproute2          # ip addr/link/route inside the sandbox over its netlink
    podman            # tests/tests/podman.rs: podman with carapace as its runtime (and umoci, skopeo)
    protobuf-compiler # tests/tests/cri.rs: protoc, to build the k8s-cri crate (the CRI client)
    curl              # tests/tests/net_sandbox.rs: a client outside the sandbox
    redis-server redis-tools nginx wrk  # bench net: servers in the sandbox, clients outside
)

missing=()
for p in "${CARAPACE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
