//! An async service memoizing a slow remote call with `#[dogpile]` on an `async fn`.
//!
//! 200 concurrent requests arrive for a handful of users. The first wave for each user
//! awaits one remote call (nobody blocks a thread: waiting is an await); once the value
//! is stale, one request refreshes it and every other request gets the stale profile
//! at once.
//!
//! Run: `cargo run --example async_service`

use dogpile::dogpile;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static REMOTE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug)]
struct Profile {
    user: u64,
    fetched: u64,
}

/// A fake remote call: 50 ms of latency, counted.
#[dogpile(ttl = "200ms")]
async fn profile(user: u64) -> Arc<Profile> {
    let fetched = REMOTE_CALLS.fetch_add(1, Ordering::SeqCst) as u64;
    tokio::time::sleep(Duration::from_millis(50)).await;
    Arc::new(Profile { user, fetched })
}

async fn wave(label: &str) {
    let tasks: Vec<_> = (0..200u64)
        .map(|request| {
            tokio::spawn(async move {
                let begun = Instant::now();
                let profile = profile(request % 4).await;
                assert!(profile.user < 4 && profile.fetched < 8);
                begun.elapsed()
            })
        })
        .collect();
    let mut waited = 0;
    for task in tasks {
        let latency = task.await.expect("request task panicked");
        waited += usize::from(latency > Duration::from_millis(10));
    }
    println!(
        "{label:<26} requests that waited > 10 ms: {waited:>3} / 200, remote calls so far: {}",
        REMOTE_CALLS.load(Ordering::SeqCst)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    wave("cold (4 users)").await; // 4 remote calls, everyone else awaits them
    wave("fresh").await; // no remote call
    tokio::time::sleep(Duration::from_millis(250)).await; // let the values go stale
    wave("stale: refresh in flight").await; // 4 refreshes; the stale profiles are served
    tokio::time::sleep(Duration::from_millis(80)).await; // the refreshes finish
    wave("fresh again").await;
    let stats = PROFILE.stats();
    println!(
        "hits {} / stale hits {} / misses {} / refreshes {} / waits {}",
        stats.hits, stats.stale_hits, stats.misses, stats.refreshes, stats.waits
    );
    assert_eq!(
        REMOTE_CALLS.load(Ordering::SeqCst),
        8,
        "one call per user per expiry"
    );
}
