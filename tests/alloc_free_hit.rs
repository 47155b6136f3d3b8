//! A fresh hit allocates nothing: no owned key is built for a borrowed argument, and
//! nothing on the hit path boxes, collects or formats.
//!
//! `allocation-counter` installs a counting global allocator and counts the calling
//! thread's allocations only, so tests running in parallel do not disturb each other
//! (and this file needs no `unsafe`, which the workspace forbids).
//!
//! Each test first makes one hit outside the measurement: the first hit in a process
//! starts the default clock's ticker thread (see `dogpile::SystemClock`), a one-time
//! allocation that is not per call.

use dogpile::{dogpile, Cache};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

#[dogpile(ttl = "1h")]
fn page_len(path: &str) -> usize {
    path.len()
}

#[dogpile(ttl = "1h")]
fn shared_title(path: &str, lang: u32) -> Arc<str> {
    format!("{path} in {lang}").into()
}

const HITS: usize = 1000;

#[test]
fn a_fresh_hit_of_a_dogpile_fn_taking_str_allocates_nothing() {
    let path = String::from("/articles/42");
    assert_eq!(page_len(&path), 12); // miss: creates, and stores an owned key
    assert_eq!(page_len(&path), 12); // warm-up hit

    let info = allocation_counter::measure(|| {
        for _ in 0..HITS {
            black_box(page_len(black_box(&path)));
        }
    });
    assert_eq!(info.count_total, 0, "{HITS} fresh hits allocated: {info:?}");
    let stats = PAGE_LEN.stats();
    assert_eq!((stats.misses, stats.hits), (1, 1 + HITS as u64));
}

#[test]
fn a_fresh_hit_of_a_dogpile_fn_with_str_and_value_args_returning_arc_allocates_nothing() {
    let path = "/articles/7";
    let title = shared_title(path, 3);
    assert_eq!(&*shared_title(path, 3), &*title);

    let info = allocation_counter::measure(|| {
        for _ in 0..HITS {
            black_box(shared_title(black_box(path), black_box(3)));
        }
    });
    assert_eq!(info.count_total, 0, "{HITS} fresh hits allocated: {info:?}");
}

#[test]
fn a_fresh_hit_by_ref_with_a_str_and_u32_tuple_key_allocates_nothing() {
    let cache: Cache<(String, u32), Arc<str>> = Cache::new(Duration::from_secs(3600));
    let page = String::from("/articles/42");
    let value = cache
        .entry_by_ref(&(page.as_str(), &2))
        .get_with(|| "v".into());
    cache
        .entry_by_ref(&(page.as_str(), &2))
        .get_with(|| unreachable!("fresh"));

    let info = allocation_counter::measure(|| {
        for _ in 0..HITS {
            let hit = cache
                .entry_by_ref(black_box(&(page.as_str(), &2)))
                .get_with(|| unreachable!("fresh"));
            black_box(hit);
        }
    });
    assert_eq!(info.count_total, 0, "{HITS} fresh hits allocated: {info:?}");
    assert!(Arc::ptr_eq(
        &value,
        &cache
            .entry_by_ref(&(page.as_str(), &2))
            .get_with(|| unreachable!())
    ));
}

#[test]
fn a_fresh_hit_by_ref_with_a_str_key_allocates_nothing() {
    let cache: Cache<String, u64> = Cache::new(Duration::from_secs(3600));
    cache.entry_by_ref("/about").get_with(|| 1);
    cache
        .entry_by_ref("/about")
        .get_with(|| unreachable!("fresh"));

    let info = allocation_counter::measure(|| {
        for _ in 0..HITS {
            black_box(
                cache
                    .entry_by_ref(black_box("/about"))
                    .get_with(|| unreachable!("fresh")),
            );
        }
    });
    assert_eq!(info.count_total, 0, "{HITS} fresh hits allocated: {info:?}");
}

/// The counter does see what the cache allocates: a miss stores an owned key.
#[test]
fn the_counter_sees_a_miss_allocate() {
    let cache: Cache<String, u64> = Cache::new(Duration::from_secs(3600));
    cache.entry_by_ref("warm").get_with(|| 0);
    let info = allocation_counter::measure(|| {
        black_box(cache.entry_by_ref(black_box("a new key")).get_with(|| 1));
    });
    assert!(
        info.count_total > 0,
        "a miss should allocate its owned key: {info:?}"
    );
}
