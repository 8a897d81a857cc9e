#!/usr/bin/env bash
# First contact: install what is missing, build, and run a real program in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace
echo "--- the syscall table"
cargo run --release -q -p syscall-tables --bin gen-syscall-docs -- --summary
