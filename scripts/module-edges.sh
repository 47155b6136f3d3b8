#!/usr/bin/env bash
# Lists the `use crate::` edges between the `dogpile` crate's modules (top level, and
# inside each module folder) and fails if they form a cycle. The reader is a unit test
# of the crate, `module_graph`, which reads `dogpile/src/`.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test -p dogpile --lib module_graph -- --nocapture --test-threads 1
