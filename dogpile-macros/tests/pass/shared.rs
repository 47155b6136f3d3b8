#![deny(warnings)]
//! `shared = EXPR` on every kind of memoized fn: the expression gives a fleet tier, is
//! evaluated once, when the fn's cache is first used, and is scoped to the fn's path.
//! The tier here is down (every call fails), so each call falls back to the local rules
//! (F7); `dogpile-redis` and the root package test a real one.
use dogpile::{dogpile, Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The scopes the attribute gave the tier, and how many calls reached it.
static SCOPES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// A tier that is down: every call fails, as a Redis that does not answer.
#[derive(Clone)]
struct Down;

impl Down {
    fn down<T>(&self) -> Result<T, TierError> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Err(TierError::new("down"))
    }
}

impl<K, V> SharedTier<K, V> for Down {
    fn lookup(&self, _: &K) -> Result<Option<SharedValue<V>>, TierError> {
        self.down()
    }
    fn claim(&self, _: &K, _: Duration) -> Result<Claim<V>, TierError> {
        self.down()
    }
    fn publish(&self, _: &K, _: &Lease, _: &V, _: Duration) -> Result<Publish, TierError> {
        self.down()
    }
    fn release(&self, _: &K, _: &Lease, _: Duration) -> Result<(), TierError> {
        self.down()
    }
    fn invalidate(&self, _: &K) -> Result<(), TierError> {
        self.down()
    }
    fn remove(&self, _: &K) -> Result<(), TierError> {
        self.down()
    }
    fn subscribe(&self, _: EventSink<K>) {}
    fn scoped(self, scope: &str) -> Self {
        SCOPES.lock().unwrap().push(scope.to_string());
        self
    }
}

#[dogpile(ttl = "60s", shared = Down)]
fn page(path: &str, lang: u8) -> String {
    format!("{path}:{lang}")
}

#[dogpile(ttl = "60s", shared = Down)]
fn fallible(id: u64) -> Result<u64, String> {
    Ok(id + 1)
}

#[dogpile(ttl = "60s", background, shared = Down)]
fn refreshed(id: u64) -> u64 {
    id * 2
}

#[dogpile(ttl = "60s", sync_readers, shared = Down)]
fn guarded(id: u64) -> Vec<u64> {
    vec![id]
}

#[dogpile(ttl = "60s", shared = Down)]
async fn fetched(url: &str) -> String {
    url.to_uppercase()
}

#[dogpile(ttl = "60s", background, shared = Down)]
async fn fetched_in_background(id: u64) -> Result<u64, String> {
    Ok(id)
}

struct Users;

impl Users {
    #[dogpile(ttl = "60s", key = id, shared = Down)]
    fn name(&self, id: u64) -> String {
        format!("user {id}")
    }
}

#[test]
fn runs() {
    assert_eq!(page("/", 1), "/:1");
    assert_eq!(fallible(1), Ok(2));
    assert_eq!(refreshed(2), 4);
    assert_eq!(*guarded(3), vec![3]);
    assert_eq!(Users.name(4), "user 4");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(fetched("a")), "A");
    assert_eq!(runtime.block_on(fetched_in_background(5)), Ok(5));
    assert!(CALLS.load(Ordering::SeqCst) > 0, "no call reached the tier");
    let scopes = SCOPES.lock().unwrap().clone();
    for name in [
        "page",
        "fallible",
        "refreshed",
        "guarded",
        "fetched",
        "name",
    ] {
        let suffix = format!("shared::{name}");
        assert!(
            scopes.iter().any(|s| s.ends_with(&suffix)),
            "{name}: {scopes:?}"
        );
    }
}
