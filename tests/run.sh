#!/usr/bin/env bash
# README's test command: installs what the tests need on a fresh Debian
# machine (Debian packages, wasm targets, Node packages; see .ci/deps), then
# runs the whole test suite. CI runs this too (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps --tests
cargo test --workspace "$@"
