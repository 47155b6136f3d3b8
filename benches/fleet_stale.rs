//! What a stale hit costs with the fleet tier, on a real `redis-server` started here:
//!
//! - the claimant of an inline cache: it claims the key in Redis, creates (here, for
//!   nothing) and publishes: two round trips;
//! - another process while the claimant holds the lease: one claim round trip serves it
//!   the stale value, which it then keeps without asking Redis again until the lease
//!   ends or a notification arrives (F1, F3): the calls after it are fresh L1 hits;
//! - the claimant of a `background` cache: it returns the stale value at once and hands
//!   the tier's steps to the refresh executor (R10 with F1).
//!
//! ```text
//! cargo bench --bench fleet_stale -- --warm-up-time 1 --measurement-time 3
//! ```

use criterion::{criterion_group, BatchSize, Criterion};
use dogpile::{Cache, Claim, ManualClock, SharedTier};
use dogpile_redis::RedisTier;
use std::hint::black_box;
use std::time::Duration;
use support::redis::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn stale_hit(c: &mut Criterion) {
    let server = RedisServer::start();
    let tier = |ns: &str| RedisTier::open(&server.url()).unwrap().namespace(ns);
    let mut group = c.benchmark_group("stale_hit");

    // The claimant (inline): each call finds its key invalidated (soft, in L1 and in
    // Redis, outside the timing) and refreshes it under a lease.
    let clock = ManualClock::new();
    let claimant: Cache<u64, u64> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier("claimant"))
        .build();
    claimant.get_with(0, || 0);
    group.bench_function("claimant, inline: claim + create + publish", |b| {
        b.iter_batched(
            || claimant.invalidate(&0),
            |()| black_box(claimant.get_with(black_box(0), || 1)),
            BatchSize::PerIteration,
        )
    });

    // Another process holds the lease: each call finds its L1 copy stale (the manual
    // clock moves on, outside the timing) and is served the stale value by one claim.
    let clock = ManualClock::new();
    let other: Cache<u64, u64> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier("held"))
        .build();
    other.get_with(0, || 0);
    other.invalidate(&0);
    let holder = tier("held");
    let Claim::Owned { .. } = SharedTier::<u64, u64>::claim(&holder, &0, Duration::ZERO).unwrap()
    else {
        panic!("the holder must own the lease");
    };
    group.bench_function(
        "others, lease held elsewhere: one claim, served stale",
        |b| {
            b.iter_batched(
                || clock.advance(TTL),
                |()| black_box(other.get_with(black_box(0), || unreachable!("held elsewhere"))),
                BatchSize::PerIteration,
            )
        },
    );
    group.bench_function("others, after that: L1 hits until the lease ends", |b| {
        b.iter(|| black_box(other.get_with(black_box(0), || unreachable!("held elsewhere"))))
    });

    // The claimant (background): returns the stale value; the refresh runs elsewhere.
    let clock = ManualClock::new();
    let background: Cache<u64, u64, dogpile::mode::Background> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .background_refresh()
        .shared(tier("background"))
        .build();
    let mut key = 0u64;
    for k in 0..4096 {
        background.get_with(k, move || k);
    }
    clock.advance(TTL);
    group.bench_function(
        "claimant, background: served stale, refresh handed off",
        |b| {
            b.iter(|| {
                // A key this process has not refreshed yet: every call is a claimant's.
                key += 1;
                if key & 4095 == 0 {
                    clock.advance(TTL);
                }
                black_box(background.get_with(black_box(key & 4095), move || key))
            })
        },
    );
    group.finish();
}

criterion_group!(benches, stale_hit);
fn main() {
    // Where no redis-server is installed this says so and measures nothing.
    if support::redis::skip_without_server("the fleet_stale bench") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
