#!/usr/bin/env bash
# Instructions per fresh hit of a `#[dogpile]` fn and of the `Cache::get_with` it expands
# to (u64 key, Arc value), counted by valgrind's callgrind. Generates a crate that
# depends on this workspace's `dogpile` with its default features, as a user's would,
# builds it `--release`, and runs 100,000 hits over 1024 keys by each path, counting the
# instructions of the hit loop only (callgrind's `--toggle-collect`). A count, not a
# time: it does not move with the machine's load (the wall-clock figures are `cargo
# bench --bench hit -- fresh_hit_arc`). It moves a little from run to run with the
# map's hash seed, which each process draws anew (how many keys share a probe group),
# so each path runs RUNS times, alternating, and the medians are compared.
#
# usage: scripts/hit-instructions.sh [RUNS]   (default 5; needs valgrind)
# env:   WORK (default /tmp/dogpile-hit-instructions), CARGO_TARGET_DIR (default $WORK/target)
set -euo pipefail

runs="${1:-5}"
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${WORK:-/tmp/dogpile-hit-instructions}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$work/target}"
mkdir -p "$work/src"
cat >"$work/Cargo.toml" <<TOML
[package]
name = "hit-instructions"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
dogpile = { path = "$root/dogpile" }

[workspace]
TOML
cat >"$work/src/main.rs" <<'RUST'
use dogpile::{dogpile, Cache};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const KEYS: u64 = 1024;

#[dogpile(ttl = "1h")]
fn tripled(k: u64) -> Arc<u64> {
    Arc::new(k.wrapping_mul(3))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap();
    let hits: u64 = args.next().unwrap().parse().unwrap();
    let direct: Cache<u64, Arc<u64>> = Cache::new(Duration::from_secs(3600));
    for k in 0..KEYS {
        tripled(k);
        direct.get_with(k, || Arc::new(k.wrapping_mul(3)));
    }
    let sum = if path == "attr" {
        hits_attr(hits)
    } else {
        hits_get_with(&direct, hits)
    };
    println!("{sum}");
}

#[inline(never)]
fn hits_attr(hits: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..hits {
        sum = sum.wrapping_add(*tripled(black_box(i % KEYS)));
    }
    sum
}

#[inline(never)]
fn hits_get_with(direct: &Cache<u64, Arc<u64>>, hits: u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..hits {
        sum = sum.wrapping_add(*direct.get_with(black_box(i % KEYS), || unreachable!()));
    }
    sum
}
RUST
cargo build --release --quiet --manifest-path "$work/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/hit-instructions"

hits=100000
# Instructions per hit of one run of path $1: the hit loop's only.
per_hit() {
    valgrind --tool=callgrind --toggle-collect="*hits_$1*" \
        --callgrind-out-file="$work/callgrind.out" "$bin" "$1" "$hits" 2>&1 >/dev/null |
        awk -v n="$hits" '/Collected/ { printf "%.2f\n", $4 / n }'
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

attr=() get_with=()
for _ in $(seq "$runs"); do
    attr+=("$(per_hit attr)")
    get_with+=("$(per_hit get_with)")
done
a=$(printf '%s\n' "${attr[@]}" | median)
g=$(printf '%s\n' "${get_with[@]}" | median)
echo "#[dogpile]:      $a instructions per hit [${attr[*]}]"
echo "Cache::get_with: $g instructions per hit [${get_with[*]}]"
awk -v a="$a" -v b="$g" 'BEGIN { printf "#[dogpile] / Cache::get_with: %.3f\n", a / b }'
