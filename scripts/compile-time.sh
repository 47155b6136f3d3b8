#!/usr/bin/env bash
# Compile time of memoized fns, dogpile against `cached` 4: generates crates of N
# memoized `fn(&str, u32) -> Arc<V_i>`, each fn with its own value type, builds each
# `--release` against this workspace's `dogpile` (dependencies built first, once), and
# reports the CPU seconds (user + sys of cargo and the rustc it runs) of the crate's own
# build: the median of RUNS runs. The two libraries' builds alternate in one loop, so
# that a busy machine slows both alike; the ratio is the figure to compare.
#
# usage: scripts/compile-time.sh [RUNS] [FNS...]     (default: 5 runs, 1 and 30 fns)
# env:   WORK (default /tmp/dogpile-compile-time), CARGO_TARGET_DIR (default $WORK/target)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-5}"
shift || true
if [ $# -gt 0 ]; then sizes=("$@"); else sizes=(1 30); fi
work="${WORK:-/tmp/dogpile-compile-time}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
mkdir -p "$work"

# One crate: $1 = dogpile | cached, $2 = number of fns.
generate() {
    local lib="$1" fns="$2" dir="$work/$1-$2"
    mkdir -p "$dir/src"
    local dep
    if [ "$lib" = dogpile ]; then
        dep="dogpile = { path = \"$root/dogpile\" }"
    else
        dep='cached = "4"'
    fi
    cat >"$dir/Cargo.toml" <<EOF
[package]
name = "ct-$lib-$fns"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
$dep

[workspace]
EOF
    {
        echo "use std::sync::Arc;"
        for i in $(seq 0 $((fns - 1))); do
            echo "#[derive(Clone, Debug)]"
            echo "pub struct V$i(pub u64);"
            if [ "$lib" = dogpile ]; then
                echo "#[dogpile::dogpile(ttl = \"60s\")]"
            else
                echo "#[cached::macros::cached(ttl_secs = 60, key = \"(String, u32)\", convert = r#\"{ (a.to_owned(), b) }\"#)]"
            fi
            echo "pub fn f$i(a: &str, b: u32) -> Arc<V$i> {"
            echo "    Arc::new(V$i(a.len() as u64 + u64::from(b) + $i))"
            echo "}"
        done
    } >"$dir/src/lib.rs"
    echo "$dir"
}

# CPU seconds of one build of the crate in $1 alone (its dependencies are built).
build_seconds() {
    local dir="$1"
    touch "$dir/src/lib.rs"
    /usr/bin/time -f "%U %S" -o "$work/time.txt" \
        cargo build --release --quiet --manifest-path "$dir/Cargo.toml" >/dev/null 2>&1
    awk '{ printf "%.2f", $1 + $2 }' "$work/time.txt"
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo "runs: $runs; crates in $work; target $CARGO_TARGET_DIR"
for fns in "${sizes[@]}"; do
    d=$(generate dogpile "$fns")
    c=$(generate cached "$fns")
    # Dependencies, once; not measured.
    cargo build --release --quiet --manifest-path "$d/Cargo.toml"
    cargo build --release --quiet --manifest-path "$c/Cargo.toml"
    ds=() cs=()
    for _ in $(seq "$runs"); do
        ds+=("$(build_seconds "$d")")
        cs+=("$(build_seconds "$c")")
    done
    dm=$(printf '%s\n' "${ds[@]}" | median)
    cm=$(printf '%s\n' "${cs[@]}" | median)
    ratio=$(awk -v a="$dm" -v b="$cm" 'BEGIN { printf "%.2f", a / b }')
    diff=$(awk -v a="$dm" -v b="$cm" 'BEGIN { printf "%.2f", a - b }')
    echo "$fns fns, each its own value type: dogpile ${dm}s [${ds[*]}], cached ${cm}s [${cs[*]}]: ${ratio}x, +${diff}s"
done
