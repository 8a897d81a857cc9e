#!/usr/bin/env bash
# Every test: formatting, lints, unit tests, and the integration suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# The real-program tests once more on the ptrace platform (systrap is the default; the
# syscall suite and tests/tests/platforms.rs run on both already). `carapace do` takes its
# platform from CARAPACE_PLATFORM when no --platform is given.
CARAPACE_PLATFORM=ptrace cargo test -p tests --test do_cli --test do_proc --test do_signals \
    --test fs_workloads --test unix_sockets --test inet_loopback
