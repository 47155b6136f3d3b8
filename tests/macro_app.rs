//! End-to-end: `#[dogpile]` on application-shaped fns. Context arguments (a pool, a
//! client, a logger) stay out of the key with `key = ..`; a computed key with
//! `key(T) = EXPR`; `skip_none` for `Option` fns. Every wait is bounded (`common`).

use support::common;

use common::{eventually, join_all, Gate};
use dogpile::dogpile;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier, LazyLock};
use std::thread;

/// A connection pool: not `Hash`, `Eq` nor `Clone`, so it could never be part of a key.
struct Pool {
    queries: AtomicUsize,
    gate: Gate,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    queries: AtomicUsize::new(0),
    gate: Gate::new(),
});

#[dogpile(ttl = "1h", key = id)]
fn user_name(db: &Pool, id: u64) -> Arc<String> {
    db.queries.fetch_add(1, SeqCst);
    db.gate.wait();
    Arc::new(format!("user {id}"))
}

#[test]
fn eight_threads_on_a_cold_key_of_a_key_id_fn_run_its_body_once() {
    let barrier = Arc::new(Barrier::new(8));
    let handles = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                user_name(&POOL, 7)
            })
        })
        .collect();
    // The body is running and the 7 other callers wait for it before it may finish.
    eventually("7 callers waiting on the cold key", || {
        POOL.queries.load(SeqCst) == 1 && USER_NAME.stats().waits == 7
    });
    POOL.gate.open();
    let names: Vec<_> = join_all(handles).into_iter().map(Result::unwrap).collect();
    assert_eq!(POOL.queries.load(SeqCst), 1, "one body call for 8 callers");
    assert!(names.iter().all(|n| Arc::ptr_eq(n, &names[0])));
    assert_eq!(*names[0], "user 7");
    assert_eq!(USER_NAME.stats().misses, 8);
    // The handle is keyed by the id alone: `Cache<u64, Arc<String>>`.
    assert!(USER_NAME.remove(&7).is_some());
}

/// A logger that is not part of the key, passed by value.
struct Logger(Vec<String>);

#[dogpile(ttl = "1h", key = (region, page))]
fn listing(mut log: Logger, page: u32, region: &str) -> String {
    log.0.push(format!("listing {region}/{page}"));
    format!("{region}/{page}")
}

#[test]
fn key_list_forms_the_key_in_the_order_written() {
    let calls_before = LISTING.stats().misses;
    assert_eq!(listing(Logger(vec!["a".into()]), 2, "eu"), "eu/2");
    // Another logger, same key: a hit.
    assert_eq!(listing(Logger(Vec::new()), 2, "eu"), "eu/2");
    assert_eq!(LISTING.stats().misses, calls_before + 1);
    assert_eq!(LISTING.stats().hits, 1);
    // The handle's key is `(String, u32)`: region first, as in `key = (region, page)`.
    let removed: Option<String> = LISTING.remove(&("eu".to_owned(), 2u32));
    assert_eq!(removed.as_deref(), Some("eu/2"));
}

/// A request type that is not `Hash`: only its `id` identifies the result.
struct Request {
    id: u64,
    trace: String,
}

static PROFILE_CALLS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h", key(u64) = request.id)]
fn profile(request: &Request) -> String {
    PROFILE_CALLS.fetch_add(1, SeqCst);
    format!("profile {} ({})", request.id, request.trace)
}

#[test]
fn a_computed_key_keys_by_its_value() {
    let first = Request {
        id: 1,
        trace: "t1".into(),
    };
    let again = Request {
        id: 1,
        trace: "t2".into(),
    };
    assert_eq!(profile(&first), "profile 1 (t1)");
    assert_eq!(profile(&again), "profile 1 (t1)", "same id: a hit");
    assert_eq!(PROFILE_CALLS.load(SeqCst), 1);
    assert_eq!(
        profile(&Request {
            id: 2,
            trace: "t3".into()
        }),
        "profile 2 (t3)"
    );
    assert_eq!(PROFILE_CALLS.load(SeqCst), 2);
    // The handle is keyed by the computed `u64`.
    assert_eq!(PROFILE.remove(&1).as_deref(), Some("profile 1 (t1)"));
}

static FIND_CALLS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h", skip_none)]
fn find_row(id: u64) -> Option<Arc<str>> {
    FIND_CALLS.fetch_add(1, SeqCst);
    id.is_multiple_of(2).then(|| Arc::from(format!("row {id}")))
}

#[test]
fn skip_none_stores_some_but_not_none() {
    assert_eq!(find_row(1), None);
    assert_eq!(find_row(1), None);
    assert_eq!(
        FIND_CALLS.load(SeqCst),
        2,
        "a `None` is not stored: the body runs again"
    );
    assert_eq!(FIND_ROW.len(), 0);

    let row = find_row(2).unwrap();
    assert_eq!(&*row, "row 2");
    let again = find_row(2).unwrap();
    assert!(Arc::ptr_eq(&row, &again), "a `Some` is stored: a hit");
    assert_eq!(FIND_CALLS.load(SeqCst), 3);
}

static ASYNC_FIND_CALLS: AtomicUsize = AtomicUsize::new(0);

#[dogpile(ttl = "1h", skip_none, key = id)]
async fn find_async(db: &Pool, id: u64) -> Option<String> {
    let _ = db;
    ASYNC_FIND_CALLS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    (id > 10).then(|| format!("row {id}"))
}

static ASYNC_POOL: LazyLock<Pool> = LazyLock::new(|| Pool {
    queries: AtomicUsize::new(0),
    gate: Gate::new(),
});

#[tokio::test]
async fn skip_none_on_an_async_fn_stores_some_but_not_none() {
    assert_eq!(find_async(&ASYNC_POOL, 3).await, None);
    assert_eq!(find_async(&ASYNC_POOL, 3).await, None);
    assert_eq!(ASYNC_FIND_CALLS.load(SeqCst), 2);
    assert_eq!(find_async(&ASYNC_POOL, 11).await.as_deref(), Some("row 11"));
    assert_eq!(find_async(&ASYNC_POOL, 11).await.as_deref(), Some("row 11"));
    assert_eq!(ASYNC_FIND_CALLS.load(SeqCst), 3);
}

/// An HTTP client stand-in: not `Hash`.
struct Client {
    requests: AtomicUsize,
}

static CLIENT: Client = Client {
    requests: AtomicUsize::new(0),
};

static FETCH_GATE: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(0);

#[dogpile(ttl = "1h", key = url)]
async fn fetch(client: &Client, url: &str) -> Arc<String> {
    client.requests.fetch_add(1, SeqCst);
    let _permit = FETCH_GATE.acquire().await.unwrap();
    Arc::new(format!("body of {url}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_tasks_on_a_cold_key_of_an_async_key_fn_run_its_body_once() {
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                fetch(&CLIENT, "/a").await
            })
        })
        .collect();
    let all_arrived = async {
        while CLIENT.requests.load(SeqCst) < 1 || FETCH.stats().waits < 7 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(common::BOUND, all_arrived)
        .await
        .expect("8 callers on the cold key (hang)");
    FETCH_GATE.add_permits(8);
    let mut bodies = Vec::new();
    for task in tasks {
        let body = tokio::time::timeout(common::BOUND, task)
            .await
            .expect("hang")
            .unwrap();
        bodies.push(body);
    }
    assert_eq!(
        CLIENT.requests.load(SeqCst),
        1,
        "one body call for 8 callers"
    );
    assert!(bodies.iter().all(|b| Arc::ptr_eq(b, &bodies[0])));
    assert_eq!(
        FETCH.remove("/a").as_deref().map(String::as_str),
        Some("body of /a")
    );
}

/// With `background`, context arguments are owned (the body may outlive the call).
#[dogpile(ttl = "1h", background, key = id)]
fn background_user(db: Arc<Pool>, id: u64) -> u64 {
    db.queries.fetch_add(1, SeqCst);
    id * 2
}

#[test]
fn background_with_a_key_moves_the_owned_context_into_the_body() {
    let pool = Arc::new(Pool {
        queries: AtomicUsize::new(0),
        gate: Gate::new(),
    });
    assert_eq!(background_user(pool.clone(), 4), 8);
    assert_eq!(background_user(pool.clone(), 4), 8);
    assert_eq!(pool.queries.load(SeqCst), 1);
}

/// A service with a per-instance cache (`field = names`) and a shared one (`key = id`).
struct Directory {
    prefix: &'static str,
    names: dogpile::Cache<u64, String>,
    bodies: AtomicUsize,
}

impl Directory {
    fn new(prefix: &'static str) -> Self {
        Directory {
            prefix,
            names: dogpile::Cache::new(std::time::Duration::from_secs(3600)),
            bodies: AtomicUsize::new(0),
        }
    }

    #[dogpile(field = names)]
    fn name(&self, id: u64) -> String {
        self.bodies.fetch_add(1, SeqCst);
        format!("{}{id}", self.prefix)
    }

    #[dogpile(field = names)]
    async fn name_async(&self, id: u64) -> String {
        self.bodies.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        format!("{}{id}", self.prefix)
    }

    /// One cache for every instance: the first instance's answer is everyone's.
    #[dogpile(ttl = "1h", key = id)]
    fn shared_name(&self, id: u64) -> String {
        self.bodies.fetch_add(1, SeqCst);
        format!("{}{id}", self.prefix)
    }
}

#[test]
fn two_instances_with_per_instance_caches_do_not_share_values() {
    let a = Directory::new("a-");
    let b = Directory::new("b-");
    assert_eq!(a.name(1), "a-1");
    assert_eq!(b.name(1), "b-1", "b has its own cache");
    assert_eq!(a.name(1), "a-1");
    assert_eq!(b.name(1), "b-1");
    assert_eq!(a.bodies.load(SeqCst), 1);
    assert_eq!(b.bodies.load(SeqCst), 1);
    assert_eq!((a.names.len(), b.names.len()), (1, 1));
    assert_eq!(a.names.remove(&1).as_deref(), Some("a-1"));
}

#[tokio::test]
async fn an_async_method_uses_its_instance_cache() {
    let a = Directory::new("a-");
    let b = Directory::new("b-");
    assert_eq!(a.name_async(2).await, "a-2");
    assert_eq!(b.name_async(2).await, "b-2");
    assert_eq!(a.name_async(2).await, "a-2");
    assert_eq!(a.bodies.load(SeqCst), 1);
    assert_eq!(b.bodies.load(SeqCst), 1);
}

#[test]
fn a_method_with_a_key_shares_one_cache_across_instances() {
    let a = Directory::new("a-");
    let b = Directory::new("b-");
    assert_eq!(a.shared_name(9), "a-9");
    assert_eq!(
        b.shared_name(9),
        "a-9",
        "keyed by `id` only, shared by every instance"
    );
    assert_eq!(b.bodies.load(SeqCst), 0);
    assert_eq!(Directory::shared_name_cache().stats().hits, 1);
}

#[dogpile(ttl = "1h", key = (region, page))]
fn region_page(region: &str, page: u32) -> Arc<str> {
    format!("{region}/{page}").into()
}

#[test]
fn the_handle_looks_up_and_invalidates_by_borrowed_parts() {
    let before = region_page("eu", 2);
    // Look up without creating, by `&str` for the `String` part.
    let entry = REGION_PAGE.entry_by_ref(&("eu", &2u32));
    assert!(entry.contains());
    assert!(Arc::ptr_eq(&entry.get().unwrap(), &before));
    assert!(!REGION_PAGE.entry_by_ref(&("us", &2u32)).contains());
    assert_eq!(REGION_PAGE.len(), 1, "a lookup creates nothing");
    // Soft invalidation: still served while the next call refreshes it.
    REGION_PAGE.entry_by_ref(&("eu", &2u32)).invalidate();
    let after = region_page("eu", 2);
    assert!(!Arc::ptr_eq(&after, &before), "refreshed");
    // Hard removal by the same borrowed parts.
    assert!(REGION_PAGE.entry_by_ref(&("eu", &2u32)).remove().is_some());
    assert!(REGION_PAGE.is_empty());
}

/// Associated fns without `self`: the cache is behind `Repo::{fn}_cache()`, since an
/// `impl` block can't hold a `static`.
struct Repo;

static REPO_BODIES: AtomicUsize = AtomicUsize::new(0);

impl Repo {
    #[dogpile(ttl = "1h", associated)]
    fn lookup(id: u64) -> Arc<str> {
        REPO_BODIES.fetch_add(1, SeqCst);
        Self::row(id)
    }

    /// Recognised as associated by the `Self::` call in its body.
    #[dogpile(ttl = "1h")]
    async fn lookup_async(path: &str) -> Result<Arc<str>, String> {
        tokio::task::yield_now().await;
        Ok(Self::row(path.len() as u64))
    }

    fn row(id: u64) -> Arc<str> {
        format!("row {id}").into()
    }
}

#[test]
fn an_associated_fn_memoizes_through_its_associated_handle() {
    let barrier = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                Repo::lookup(41)
            })
        })
        .collect();
    let rows: Vec<_> = join_all(threads).into_iter().map(Result::unwrap).collect();
    assert!(rows.iter().all(|r| Arc::ptr_eq(r, &rows[0])), "one value");
    assert_eq!(REPO_BODIES.load(SeqCst), 1, "one body call for 8 threads");
    assert_eq!(Repo::lookup_cache().len(), 1);
    // Every call counted once: the creator's miss, and a hit or a miss (one that found
    // the body running) for each of the others.
    let stats = Repo::lookup_cache().stats();
    assert_eq!(stats.calls(), 8, "{stats:?}");
    assert!(stats.misses >= 1, "{stats:?}");
    assert!(Repo::lookup_cache().remove(&41).is_some());
    assert_eq!(&*Repo::lookup(41), "row 41");
    assert_eq!(REPO_BODIES.load(SeqCst), 2, "removed: runs again");
}

#[tokio::test]
async fn an_async_associated_fn_memoizes_through_its_associated_handle() {
    let first = Repo::lookup_async("/about").await.unwrap();
    let second = Repo::lookup_async("/about").await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "a hit");
    let cache = Repo::lookup_async_cache();
    assert_eq!((cache.stats().misses, cache.stats().hits), (1, 1));
    assert!(cache.contains_key("/about"));
}
