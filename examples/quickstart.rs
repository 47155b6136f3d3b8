//! One memoized function: the first call runs the body, the second is a cache hit.
//!
//! ```text
//! cargo run --example quickstart
//! ```

use dogpile::dogpile;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pretend this is slow: a database query, a template render, an HTTP call.
///
/// `#[dogpile]` keeps this signature and memoizes it: the arguments form the key
/// (`&str` is stored as a `String`), the value stays fresh for 10 minutes, and once it is
/// stale, one caller recomputes it while everyone else keeps getting the old one.
#[dogpile(ttl = "10m")]
fn render(page: &str, user_id: u64) -> Arc<String> {
    std::thread::sleep(Duration::from_millis(200));
    Arc::new(format!("<h1>{page}</h1><p>hello, user {user_id}</p>"))
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn main() {
    let (first, cold) = timed(|| render("home", 7));
    let (second, warm) = timed(|| render("home", 7));
    assert!(
        Arc::ptr_eq(&first, &second),
        "the same value, not a recomputation"
    );
    println!("first call:  {cold:>10.2?} (ran the body)");
    println!("second call: {warm:>10.2?} (cache hit)");

    // The cache behind `render` is a `static` named after it, for stats and invalidation.
    let stats = RENDER.stats();
    println!("hits: {}, misses: {}", stats.hits, stats.misses);
    assert_eq!((stats.hits, stats.misses), (1, 1));

    // The generated companions: `render_no_cache` always runs the body;
    // `render_prime` runs it and stores the result as fresh.
    let _fresh = render_prime("home", 7);
    RENDER.invalidate(&("home".to_owned(), 7)); // soft: the next caller refreshes
    println!("{}", render("home", 7));
}
