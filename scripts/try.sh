#!/usr/bin/env bash
# First contact: install what is missing, build, and run real programs in the sandbox.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo build --release --workspace
carapace=target/release/carapace
echo "--- carapace do /bin/echo hello from the sandbox"
"$carapace" do /bin/echo hello from the sandbox
echo "--- carapace do /usr/bin/python3 (pid and kernel release as the sandbox shows them)"
"$carapace" do /usr/bin/python3 -c 'import os; print("pid", os.getpid(), "kernel", os.uname().release)'
echo "--- the syscall table"
cargo run --release -q -p syscall-tables --bin gen-syscall-docs -- --summary
