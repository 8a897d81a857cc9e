#!/usr/bin/env bash
# Every test: formatting, lints, unit tests, and the integration suites.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
