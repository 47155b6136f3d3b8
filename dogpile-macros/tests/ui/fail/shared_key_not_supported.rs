// A tier takes only the keys (and values) it can share: here, keys it can write as text,
// as `dogpile_redis::RedisTier` takes keys serde can serialize. A key type it does not
// take is reported at the `shared = ..` expression, by `SharedTier`'s own message.
use dogpile::{dogpile, Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
use std::fmt::Display;
use std::time::Duration;

/// A tier for keys that can be written as text (a sketch: it shares nothing).
#[derive(Clone)]
struct TextTier;

impl<K: Display, V> SharedTier<K, V> for TextTier {
    fn lookup(&self, _: &K) -> Result<Option<SharedValue<V>>, TierError> {
        Ok(None)
    }
    fn claim(&self, _: &K, _: Duration) -> Result<Claim<V>, TierError> {
        Ok(Claim::Owned { lease: Lease::new("me", 0), stale: None, failures: 0 })
    }
    fn publish(&self, _: &K, _: &Lease, _: &V, _: Duration) -> Result<Publish, TierError> {
        Ok(Publish::Stored)
    }
    fn release(&self, _: &K, _: &Lease, _: Duration) -> Result<(), TierError> {
        Ok(())
    }
    fn invalidate(&self, _: &K) -> Result<(), TierError> {
        Ok(())
    }
    fn remove(&self, _: &K) -> Result<(), TierError> {
        Ok(())
    }
    fn subscribe(&self, _: EventSink<K>) {}
    fn scoped(self, _: &str) -> Self {
        self
    }
}

#[derive(Clone, Hash, PartialEq, Eq)]
struct UserId(u64);

#[dogpile(ttl = "10s", shared = TextTier)]
fn name(id: UserId) -> String {
    format!("user {}", id.0)
}

fn main() {
    assert_eq!(name(UserId(1)), "user 1");
}
