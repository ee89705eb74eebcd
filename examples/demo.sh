#!/usr/bin/env bash
# The Logarithm demo: generates a day of normal server logs, trains a model
# on them, then watches a fresh batch with injected anomalies and prints what
# the detector flags. Run from the repository root:
#
#     examples/demo.sh
#
# Everything happens in a temporary directory; nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash .ci/deps # Debian packages and the wasm32-wasip2 target, if missing
echo "== 0. build (a first build takes about 10 minutes: wasmtime is large)"
cargo build --workspace
bin=target/debug
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LOGARITHM_DATA_DIR="$work/data"

echo "== 1. generate 20,000 normal syslog lines (history) and 5,000 new lines with 15 anomalies"
"$bin/fakelogs" --template syslog --count 20000 --seed 1 -o "$work/history.log"
"$bin/fakelogs" --template syslog --count 5000 --anomalies 15 --seed 2 -o "$work/today.log" --labels "$work/labels"
echo "   injected at lines: $(tr '\n' ' ' < "$work/labels")"

echo "== 2. train: logarithm-trainer train $work/history.log"
"$bin/logarithm-trainer" train "$work/history.log"

echo "== 3. detect: logarithm monitor --once $work/today.log"
"$bin/logarithm" monitor --once "$work/today.log"

echo "== 4. the same as JSON (first anomaly): logarithm monitor --once -f json"
"$bin/logarithm" monitor --once -f json "$work/today.log" | head -n 1
