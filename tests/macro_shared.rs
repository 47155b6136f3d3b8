//! `#[dogpile(shared = EXPR)]` end to end, on a real `redis-server` of the test's own
//! (loopback, persistence off): the fn's path keeps the keys of fns sharing one tier
//! apart, and caches of the same fn in different processes share its values (F1, F2).
//! A second process is a second `RedisTier::open` on the same server with its own cache,
//! built the way the attribute builds the fn's.
//!
//! One test: the memoized fns' caches are `static`s that reach the one server this
//! test starts (and stops, also when it fails). It runs under support's harness, which
//! skips it, loudly, where no redis-server is installed.

use dogpile::{dogpile, Cache};
use dogpile_redis::RedisTier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use support::redis::RedisServer;

static URL: OnceLock<String> = OnceLock::new();
/// How many times a `shared = ..` expression was evaluated.
static TIERS_BUILT: AtomicUsize = AtomicUsize::new(0);
/// How many times each body ran, by fn.
static PRICE_RUNS: AtomicUsize = AtomicUsize::new(0);
static STOCK_RUNS: AtomicUsize = AtomicUsize::new(0);
static FETCH_RUNS: AtomicUsize = AtomicUsize::new(0);
static REFRESHED_RUNS: AtomicUsize = AtomicUsize::new(0);
static GUARDED_RUNS: AtomicUsize = AtomicUsize::new(0);
static NAME_RUNS: AtomicUsize = AtomicUsize::new(0);
static CHECKED_RUNS: AtomicUsize = AtomicUsize::new(0);

const NAME_RUNSPACE: &str = "macro";

fn tier() -> RedisTier {
    TIERS_BUILT.fetch_add(1, Ordering::SeqCst);
    let url = URL.get().expect("the test starts the server first");
    RedisTier::open(url).unwrap().namespace(NAME_RUNSPACE)
}

// Two fns with the same key and value types on one tier.
#[dogpile(ttl = "1h", shared = tier())]
fn price(item: u64) -> u64 {
    PRICE_RUNS.fetch_add(1, Ordering::SeqCst);
    1000 + item
}

#[dogpile(ttl = "1h", shared = tier())]
fn stock(item: u64) -> u64 {
    STOCK_RUNS.fetch_add(1, Ordering::SeqCst);
    2000 + item
}

#[dogpile(ttl = "1h", shared = tier())]
async fn fetch(item: u64) -> u64 {
    FETCH_RUNS.fetch_add(1, Ordering::SeqCst);
    3000 + item
}

#[dogpile(ttl = "1h", background, shared = tier())]
fn refreshed(item: u64) -> u64 {
    REFRESHED_RUNS.fetch_add(1, Ordering::SeqCst);
    4000 + item
}

#[dogpile(ttl = "1h", sync_readers, shared = tier())]
fn guarded(item: u64) -> u64 {
    GUARDED_RUNS.fetch_add(1, Ordering::SeqCst);
    5000 + item
}

#[dogpile(ttl = "1h", shared = tier())]
fn checked(item: u64) -> Result<u64, String> {
    CHECKED_RUNS.fetch_add(1, Ordering::SeqCst);
    if item == 0 {
        return Err("no item 0".into());
    }
    Ok(6000 + item)
}

struct Users;

impl Users {
    #[dogpile(ttl = "1h", key = id, shared = tier())]
    fn name(&self, id: u64) -> String {
        NAME_RUNS.fetch_add(1, Ordering::SeqCst);
        format!("user {id}")
    }
}

/// Another process's cache of the memoized fn `name` in this module: its own L1, its
/// own connections, the tier scoped the way the attribute scopes it.
fn elsewhere<V>(name: &str) -> Cache<u64, V>
where
    V: Clone + Send + Sync + serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    let url = URL.get().unwrap();
    let scope = format!("{}::{name}", module_path!());
    let tier = RedisTier::open(url)
        .unwrap()
        .namespace(NAME_RUNSPACE)
        .scoped(&scope);
    Cache::builder()
        .ttl(Duration::from_secs(3600))
        .shared(tier)
        .build()
}

/// Runs `check` on a thread and fails the test if it has not finished in 30 s.
fn bounded(what: &str, check: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        check();
        let _ = done.send(());
    });
    let started = Instant::now();
    match finished.recv_timeout(Duration::from_secs(30)) {
        Ok(()) => worker.join().unwrap(),
        // The worker panicked: re-raise its message.
        Err(_) if worker.is_finished() => worker.join().unwrap(),
        Err(_) => panic!("{what}: no answer after {:?}", started.elapsed()),
    }
}

fn shared_fns_keep_their_keys_apart_and_share_values_across_processes() {
    let server = RedisServer::start();
    URL.set(server.url()).unwrap();
    bounded(
        "fns sharing one tier",
        fns_sharing_one_tier_keep_their_keys_apart,
    );
    bounded("a second process", a_second_process_takes_each_fns_value);
    // Each `shared = ..` expression ran once, when its fn's cache was first used: seven fns.
    assert_eq!(TIERS_BUILT.load(Ordering::SeqCst), 7);
    drop(server);
}

fn fns_sharing_one_tier_keep_their_keys_apart() {
    // Same key (1), same types, same tier and namespace: without the fn's path in the
    // scope, `stock(1)` would find `price(1)`'s value in Redis, fresh, and return it.
    assert_eq!(price(1), 1001);
    assert_eq!(stock(1), 2001);
    assert_eq!(price(1), 1001);
    assert_eq!(stock(1), 2001);
    assert_eq!(PRICE_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(STOCK_RUNS.load(Ordering::SeqCst), 1);
    // And a process that starts afresh sees each fn's own value.
    let price_here: Cache<u64, u64> = elsewhere("price");
    let stock_here: Cache<u64, u64> = elsewhere("stock");
    assert_eq!(price_here.get_with(1, || unreachable!("in Redis")), 1001);
    assert_eq!(stock_here.get_with(1, || unreachable!("in Redis")), 2001);
}

fn a_second_process_takes_each_fns_value() {
    // F2 for every form the attribute generates: the fn creates once and publishes; the
    // other process's cache of the same fn path takes the value from Redis.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(fetch(7)), 3007);
    assert_eq!(refreshed(7), 4007);
    assert_eq!(*guarded(7), 5007);
    assert_eq!(Users.name(7), "user 7");
    assert_eq!(checked(7), Ok(6007));
    assert_eq!(checked(0), Err("no item 0".into())); // not stored, not shared

    let fetch_here: Cache<u64, u64> = elsewhere("fetch");
    let refreshed_here: Cache<u64, u64> = elsewhere("refreshed");
    let guarded_here: Cache<u64, u64> = elsewhere("guarded");
    let name_here: Cache<u64, String> = elsewhere("name");
    let checked_here: Cache<u64, u64> = elsewhere("checked");
    assert_eq!(fetch_here.get_with(7, || unreachable!("async fn")), 3007);
    assert_eq!(
        refreshed_here.get_with(7, || unreachable!("background")),
        4007
    );
    assert_eq!(
        guarded_here.get_with(7, || unreachable!("sync_readers")),
        5007
    );
    assert_eq!(name_here.get_with(7, || unreachable!("method")), "user 7");
    assert_eq!(checked_here.get_with(7, || unreachable!("Result fn")), 6007);
    assert_eq!(checked_here.get_with(0, || 42), 42, "an Err was not shared");

    // And the other way round: a value the other process created first is the fn's.
    assert_eq!(fetch_here.get_with(8, || 99), 99);
    assert_eq!(runtime.block_on(fetch(8)), 99);
    assert_eq!(
        name_here.get_with(8, || "from elsewhere".into()),
        "from elsewhere"
    );
    assert_eq!(Users.name(8), "from elsewhere");

    for (fn_name, created) in [
        ("fetch", &FETCH_RUNS),
        ("refreshed", &REFRESHED_RUNS),
        ("guarded", &GUARDED_RUNS),
        ("name", &NAME_RUNS),
    ] {
        assert_eq!(created.load(Ordering::SeqCst), 1, "{fn_name} created once");
    }
    assert_eq!(
        CHECKED_RUNS.load(Ordering::SeqCst),
        2,
        "checked: 7 once, 0 once"
    );
}

support::redis_tests! {
    needs_redis: [shared_fns_keep_their_keys_apart_and_share_values_across_processes],
}
