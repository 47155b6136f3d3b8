//! End-to-end: `background`, `sync_readers` and `async fn` wrappers over the real runtime.
//!
//! Time passes only through each fn's own `dogpile::ManualClock` (`clock = ..`); every
//! wait on another thread is bounded (`common`).

use support::common;

use common::{bounded, eventually, Gate};
use dogpile::{dogpile, ManualClock, ReadGuard};
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

static BG_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static BG_VERSION: AtomicU64 = AtomicU64::new(1);
static BG_GATE: LazyLock<Gate> = LazyLock::new(Gate::new);
/// The thread each body run happened on, in order.
static BG_RUNS: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());

/// The refresh (version 2) is slow: it blocks until the test opens the gate.
#[dogpile(ttl = "10s", background, clock = BG_CLOCK.clone())]
fn file_len(dir: &Path, name: &str, pad: usize) -> (usize, u64) {
    BG_RUNS.lock().unwrap().push(thread::current().id());
    let version = BG_VERSION.load(SeqCst);
    if version > 1 {
        BG_GATE.wait();
    }
    (dir.join(name).as_os_str().len() + pad, version)
}

#[test]
fn background_returns_the_stale_value_at_once_and_refreshes_on_another_thread() {
    let dir = Path::new("/srv");
    let me = thread::current().id();
    assert_eq!(
        file_len(dir, "a", 1),
        (7, 1),
        "a cold key is created inline"
    );
    assert_eq!(*BG_RUNS.lock().unwrap(), [me], "on the calling thread");
    BG_VERSION.store(2, SeqCst);
    BG_CLOCK.advance(Duration::from_secs(10)); // stale
                                               // The caller that triggers the refresh returns the stale value while the body is
                                               // still blocked on the gate: it did not wait for it (a wait would hang until the
                                               // bound, since only this thread opens the gate).
    assert_eq!(file_len(dir, "a", 1), (7, 1), "the stale value, at once");
    assert!(!BG_GATE.is_open());
    eventually("the refresh started", || BG_RUNS.lock().unwrap().len() == 2);
    let refresher = BG_RUNS.lock().unwrap()[1];
    assert_ne!(refresher, me, "the refresh runs on another thread");
    // Everyone else gets the stale value at once too, and starts no second refresh.
    for _ in 0..8 {
        assert_eq!(file_len(dir, "a", 1), (7, 1));
    }
    BG_GATE.open();
    eventually("the background refresh published", || {
        file_len(dir, "a", 1) == (7, 2)
    });
    assert_eq!(BG_RUNS.lock().unwrap().len(), 2, "one refresh");
    let stats = FILE_LEN.stats();
    assert_eq!((stats.refreshes, stats.waits), (1, 0), "{stats:?}");
}

#[dogpile(ttl = "1h", background)]
fn try_double(text: &str) -> Result<u64, std::num::ParseIntError> {
    Ok(text.parse::<u64>()? * 2)
}

#[test]
fn background_result() {
    assert_eq!(try_double("21"), Ok(42));
    assert!(try_double("x").is_err());
    assert_eq!(TRY_DOUBLE.remove("x"), None, "an `Err` is not stored");
    assert_eq!(TRY_DOUBLE.remove("21"), Some(42));
}

static ASYNC_BG_VERSION: AtomicU64 = AtomicU64::new(1);
static ASYNC_BG_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);

#[dogpile(ttl = "10s", background, clock = ASYNC_BG_CLOCK.clone())]
async fn async_version(name: &str) -> (String, u64) {
    tokio::task::yield_now().await;
    (name.to_owned(), ASYNC_BG_VERSION.load(SeqCst))
}

#[tokio::test]
async fn background_on_an_async_fn_spawns_the_refresh() {
    assert_eq!(
        async_version("a").await,
        ("a".to_owned(), 1),
        "cold: created inline"
    );
    ASYNC_BG_VERSION.store(2, SeqCst);
    ASYNC_BG_CLOCK.advance(Duration::from_secs(10)); // stale
    assert_eq!(async_version("a").await.1, 1, "the stale value, at once");
    // A bounded poll for the spawned refresh's publish (not a wait for time to pass).
    let refreshed = async {
        while async_version("a").await.1 != 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(common::BOUND, refreshed)
        .await
        .expect("the background refresh never published");
    let stats = ASYNC_VERSION.stats();
    assert_eq!((stats.refreshes, stats.waits), (1, 0), "{stats:?}");
}

static SR_CLOCK: LazyLock<ManualClock> = LazyLock::new(ManualClock::new);
static SR_VERSION: AtomicU64 = AtomicU64::new(0);

#[dogpile(ttl = "10s", sync_readers, clock = SR_CLOCK.clone())]
fn settings(section: &str) -> (String, u64) {
    (section.to_owned(), SR_VERSION.fetch_add(1, SeqCst) + 1)
}

/// R8 through the wrapper: a held guard blocks the publish of a refresh; a caller that
/// arrives meanwhile blocks too, and then sees the new value.
#[test]
fn sync_readers_a_held_guard_blocks_the_publish_and_late_callers_see_the_new_value() {
    let guard = settings("db");
    assert_eq!(guard.1, 1);
    SR_CLOCK.advance(Duration::from_secs(10)); // stale
    let writer = thread::spawn(|| settings("db").1);
    eventually("the refresh ran its body", || SR_VERSION.load(SeqCst) == 2);
    // Not a wait for time to pass: a window for a broken publish to slip through, and
    // for the writer to start waiting for our guard.
    thread::sleep(Duration::from_millis(50));
    assert!(
        !writer.is_finished(),
        "published while a guard on the old value was held"
    );

    static DROPPED: AtomicBool = AtomicBool::new(false);
    let arrived = Gate::new();
    let late = {
        let arrived = arrived.clone();
        thread::spawn(move || {
            arrived.open();
            let guard = settings("db");
            (guard.1, DROPPED.load(SeqCst))
        })
    };
    arrived.wait();
    thread::sleep(Duration::from_millis(50)); // the same kind of window, for the late caller
    assert!(
        !late.is_finished(),
        "a caller slipped past the waiting publish"
    );
    assert_eq!(guard.1, 1, "our value did not change under us");

    DROPPED.store(true, SeqCst);
    drop(guard);
    assert_eq!(bounded("writer", move || writer.join().unwrap()), 2);
    assert_eq!(
        bounded("late caller", move || late.join().unwrap()),
        (2, true),
        "the late caller returned only after the guard was dropped, with the new value"
    );
    assert_eq!(SR_VERSION.load(SeqCst), 2, "one refresh");
    assert_eq!(*settings("db"), ("db".to_owned(), 2));
    let stats = SETTINGS.stats();
    assert_eq!(stats.refreshes, 1, "{stats:?}");
}

#[dogpile(ttl = "1h", sync_readers)]
fn table(name: &str) -> Vec<u32> {
    name.bytes().map(u32::from).collect()
}

#[dogpile(ttl = "1h", sync_readers)]
fn try_table(name: &str) -> Result<Vec<u32>, String> {
    if name.is_empty() {
        Err("empty".into())
    } else {
        Ok(vec![name.len() as u32])
    }
}

#[test]
fn sync_readers_hand_out_guards() {
    let guard: ReadGuard<Vec<u32>> = table("ab");
    assert_eq!(*guard, [97, 98]);
    // A thread that holds a guard may call again without deadlocking on itself.
    let again = table("ab");
    assert_eq!(again.len(), 2);
    drop((guard, again));
    assert_eq!(try_table("abc").unwrap()[0], 3);
    assert!(try_table("").is_err());
}

static ASYNC_CALLS: AtomicU64 = AtomicU64::new(0);

#[dogpile(ttl = "1h")]
async fn fetch(url: &str, page: u32) -> Arc<String> {
    ASYNC_CALLS.fetch_add(1, SeqCst);
    Arc::new(format!("{url}?page={page}"))
}

#[dogpile(ttl = "1h")]
async fn try_fetch(url: &str) -> Result<String, String> {
    ASYNC_CALLS.fetch_add(1, SeqCst);
    if url.is_empty() {
        Err("no url".into())
    } else {
        Ok(url.to_uppercase())
    }
}

#[test]
fn async_fns() {
    block_on(async {
        assert_eq!(*fetch("x", 1).await, "x?page=1");
        assert_eq!(*fetch("x", 1).await, "x?page=1");
        assert_eq!(ASYNC_CALLS.load(SeqCst), 1);
        assert_eq!(*fetch_no_cache("x", 1).await, "x?page=1");
        assert_eq!(ASYNC_CALLS.load(SeqCst), 2);
        assert!(try_fetch("").await.is_err());
        assert!(try_fetch("").await.is_err());
        assert_eq!(try_fetch("a").await.unwrap(), "A");
        assert_eq!(try_fetch("a").await.unwrap(), "A");
        assert_eq!(ASYNC_CALLS.load(SeqCst), 5);
        assert_eq!(try_fetch_prime("a").await.unwrap(), "A");
        assert_eq!(ASYNC_CALLS.load(SeqCst), 6);
    });
}

/// A minimal executor: poll on this thread, park until woken.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}
