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

// ------------------------------------------------------------- every wrapper shape

/// Runs `HITS` calls of `hit` after one warm-up call, and asserts none allocated.
#[track_caller]
fn assert_hits_allocate_nothing<T>(what: &str, mut hit: impl FnMut() -> T) {
    black_box(hit()); // warm-up hit (the miss happened before)
    let info = allocation_counter::measure(|| {
        for _ in 0..HITS {
            black_box(hit());
        }
    });
    assert_eq!(
        info.count_total, 0,
        "{what}: {HITS} fresh hits allocated: {info:?}"
    );
}

/// Drives a future to completion on this thread, with no runtime (nothing allocated).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

struct Pool;

#[dogpile(ttl = "1h", key = id)]
fn user(db: &Pool, id: u64) -> Arc<str> {
    let _ = db;
    format!("user {id}").into()
}

struct Request {
    user: u64,
}

#[dogpile(ttl = "1h", key(u64) = request.user)]
fn profile(request: &Request) -> Arc<str> {
    format!("profile {}", request.user).into()
}

#[dogpile(ttl = "1h", skip_none)]
fn row(id: u64) -> Option<Arc<str>> {
    Some(format!("row {id}").into())
}

#[dogpile(ttl = "1h", stale_if_error = "1h")]
fn parsed(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

#[dogpile(ttl = "1h")]
async fn fetched(url: &str, n: u32) -> Arc<str> {
    format!("{url}#{n}").into()
}

#[dogpile(ttl = "1h", skip_none, key = url)]
async fn fetched_row(db: &Pool, url: &str) -> Option<Arc<str>> {
    let _ = db;
    Some(url.into())
}

#[dogpile(ttl = "1h", background)]
fn counted(id: u64, shard: u8) -> Arc<str> {
    format!("{id}@{shard}").into()
}

#[dogpile(ttl = "1h", background)]
async fn counted_async(id: u64) -> Arc<str> {
    format!("{id}").into()
}

#[dogpile(ttl = "1h", background)]
fn rendered(path: &str, n: u32) -> Arc<str> {
    format!("{path}#{n}").into()
}

#[dogpile(ttl = "1h", background)]
async fn rendered_async(path: &str) -> Result<Arc<str>, String> {
    Ok(path.into())
}

#[dogpile(ttl = "1h", sync_readers)]
fn guarded(path: &str, n: u32) -> Arc<str> {
    format!("{path}#{n}").into()
}

#[dogpile(ttl = "1h", sync_readers)]
fn guarded_parsed(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

#[dogpile(ttl = "1h")]
async fn parsed_async(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

#[dogpile(ttl = "1h", key = path)]
async fn titled_async(db: &Pool, path: &str) -> Arc<str> {
    let _ = db;
    path.into()
}

struct Service {
    names: Cache<String, Arc<str>>,
}

impl Service {
    #[dogpile(field = names)]
    fn name(&self, path: &str) -> Arc<str> {
        path.into()
    }

    #[dogpile(ttl = "1h", key = id)]
    fn shared(&self, id: u64) -> Arc<str> {
        format!("{id}").into()
    }
}

#[test]
fn a_fresh_hit_allocates_nothing_in_every_wrapper_shape() {
    let path = String::from("/articles/42");
    user(&Pool, 1);
    assert_hits_allocate_nothing("key = id", || user(&Pool, black_box(1)));
    let request = Request { user: 2 };
    profile(&request);
    assert_hits_allocate_nothing("key(u64) = ..", || profile(black_box(&request)));
    row(3);
    assert_hits_allocate_nothing("skip_none", || row(black_box(3)));
    parsed("12").unwrap();
    assert_hits_allocate_nothing("Result", || parsed(black_box("12")));
    block_on(fetched(&path, 1));
    assert_hits_allocate_nothing("async fn", || block_on(fetched(black_box(&path), 1)));
    block_on(fetched_row(&Pool, &path));
    assert_hits_allocate_nothing("async skip_none, key", || {
        block_on(fetched_row(&Pool, black_box(&path)))
    });
    counted(4, 1);
    assert_hits_allocate_nothing("background", || counted(black_box(4), 1));
    block_on(counted_async(5));
    assert_hits_allocate_nothing("async background", || block_on(counted_async(black_box(5))));
    // The body owns a clone of the key parts, made only when the hit path misses.
    rendered(&path, 6);
    assert_hits_allocate_nothing("background, &str key", || rendered(black_box(&path), 6));
    block_on(rendered_async(&path)).unwrap();
    assert_hits_allocate_nothing("async background Result, &str key", || {
        block_on(rendered_async(black_box(&path)))
    });
    guarded(&path, 7);
    assert_hits_allocate_nothing("sync_readers, &str key", || {
        guarded(black_box(&path), 7).len()
    });
    guarded_parsed("12").unwrap();
    assert_hits_allocate_nothing("sync_readers, Result, &str key", || {
        *guarded_parsed(black_box("12")).unwrap()
    });
    block_on(parsed_async("13")).unwrap();
    assert_hits_allocate_nothing("async Result, &str key", || {
        block_on(parsed_async(black_box("13")))
    });
    block_on(titled_async(&Pool, &path));
    assert_hits_allocate_nothing("async, key = &str part", || {
        block_on(titled_async(&Pool, black_box(&path)))
    });
    let service = Service {
        names: Cache::new(Duration::from_secs(3600)),
    };
    service.name(&path);
    assert_hits_allocate_nothing("method, field", || service.name(black_box(&path)));
    service.shared(6);
    assert_hits_allocate_nothing("method, key", || service.shared(black_box(6)));
}

#[dogpile(ttl = "1h", key = (region, page))]
fn region_page(region: &str, page: u32) -> Arc<str> {
    format!("{region}/{page}").into()
}

#[test]
fn handle_lookups_by_borrowed_parts_allocate_nothing() {
    let region = String::from("eu-west");
    region_page(&region, 2);
    assert_hits_allocate_nothing("entry_by_ref(..).get()", || {
        REGION_PAGE
            .entry_by_ref(black_box(&(region.as_str(), &2u32)))
            .get()
    });
    assert_hits_allocate_nothing("entry_by_ref(..).contains()", || {
        REGION_PAGE
            .entry_by_ref(black_box(&(region.as_str(), &2u32)))
            .contains()
    });
    assert_hits_allocate_nothing("entry_by_ref(..).invalidate()", || {
        REGION_PAGE
            .entry_by_ref(black_box(&(region.as_str(), &2u32)))
            .invalidate()
    });
}
