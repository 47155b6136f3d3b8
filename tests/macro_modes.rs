//! End-to-end: `background`, `sync_readers` and `async fn` wrappers over the real runtime.

use dogpile::{dogpile, ReadGuard};
use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::sleep;
use std::time::{Duration, Instant};

static BG_VERSION: AtomicU64 = AtomicU64::new(1);

#[dogpile(ttl = "30ms", background)]
fn file_len(dir: &Path, name: &str, pad: usize) -> (usize, u64) {
    let len = dir.join(name).as_os_str().len() + pad;
    (len, BG_VERSION.load(SeqCst))
}

#[test]
fn background_returns_the_stale_value_and_refreshes_elsewhere() {
    let dir = Path::new("/srv");
    assert_eq!(
        file_len(dir, "a", 1),
        (7, 1),
        "a cold key is created inline"
    );
    BG_VERSION.store(2, SeqCst);
    sleep(Duration::from_millis(60)); // past the ttl
    assert_eq!(file_len(dir, "a", 1), (7, 1), "the stale value, at once");
    let deadline = Instant::now() + Duration::from_secs(10);
    while file_len(dir, "a", 1) != (7, 2) {
        assert!(
            Instant::now() < deadline,
            "the background refresh never published"
        );
        sleep(Duration::from_millis(5));
    }
    assert!(FILE_LEN.stats().refreshes >= 1);
}

#[dogpile(ttl = "1h", background)]
fn try_double(text: &str) -> Result<u64, std::num::ParseIntError> {
    Ok(text.parse::<u64>()? * 2)
}

#[test]
fn background_result() {
    assert_eq!(try_double("21"), Ok(42));
    assert!(try_double("x").is_err());
    assert_eq!(
        TRY_DOUBLE.remove(&("x".to_owned(),)),
        None,
        "an `Err` is not stored"
    );
    assert_eq!(TRY_DOUBLE.remove(&("21".to_owned(),)), Some(42));
}

static ASYNC_BG_VERSION: AtomicU64 = AtomicU64::new(1);

#[dogpile(ttl = "30ms", background)]
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
    tokio::time::sleep(Duration::from_millis(60)).await; // past the ttl
    assert_eq!(async_version("a").await.1, 1, "the stale value, at once");
    let refreshed = async {
        while async_version("a").await.1 != 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), refreshed)
        .await
        .expect("the background refresh never published");
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
