//! `RedisTier` as the [`SharedTier`] of a `dogpile::Cache`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::scripts::SlotReply;
use crate::tier::RedisTier;
use crate::Error;

impl RedisTier {
    /// The key's fingerprint, noted for the events of this process's listeners.
    fn fingerprint<K: Serialize + Clone + Send + Sync + 'static>(
        &self,
        key: &K,
    ) -> Result<String, Error> {
        let fp = codec::fingerprint(std::any::type_name::<K>(), &codec::encode(key)?);
        self.shared
            .listeners
            .remember(&self.protocol.channel(), &fp, key);
        Ok(fp)
    }

    /// The value in a reply, decoded, with its Redis age (F4); `None` when absent,
    /// oversized or undecodable (a miss, logged).
    fn value_of<V: DeserializeOwned>(&self, reply: &SlotReply) -> Option<SharedValue<V>> {
        if reply.oversized {
            tracing::warn!(
                limit = self.protocol.max_value,
                "dogpile-redis: value over the size limit, treated as a miss"
            );
        }
        if reply.without_lifetime && !WITHOUT_LIFETIME_LOGGED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "dogpile-redis: a value stored without its lifetime (by an older build) is \
                 treated as a miss and replaced by the next creation (logged once)"
            );
        }
        let bytes = reply.value.as_deref()?;
        let value = codec::decode(bytes, self.protocol.max_value)?;
        Some(SharedValue {
            value,
            age: Duration::from_millis(u64::try_from(reply.age_ms).unwrap_or(0)),
            lifetime: Duration::from_millis(reply.lifetime_ms),
        })
    }
}

/// Whether a value stored without its lifetime was seen and logged (once per process).
static WITHOUT_LIFETIME_LOGGED: AtomicBool = AtomicBool::new(false);

fn lease_left(reply: &SlotReply) -> Duration {
    // -1: a lease without expiry, which only a foreign writer can leave; wait a little.
    Duration::from_millis(u64::try_from(reply.lease_left_ms).unwrap_or(100))
}

impl<K, V> SharedTier<K, V> for RedisTier
where
    K: Serialize + Clone + Send + Sync + 'static,
    V: Serialize + DeserializeOwned,
{
    fn lookup(&self, key: &K) -> Result<Option<SharedValue<V>>, TierError> {
        let fp = self.fingerprint(key)?;
        let reply = self.protocol.lookup(&fp)?;
        Ok(self.value_of(&reply))
    }

    fn claim(&self, key: &K, refresh_ahead: Duration) -> Result<Claim<V>, TierError> {
        let fp = self.fingerprint(key)?;
        let token = self.protocol.token(self.new_token())?;
        let mut reply = self.protocol.claim(&fp, refresh_ahead, &token, false)?;
        if reply.kind == "fresh" {
            match self.value_of(&reply) {
                Some(fresh) => return Ok(Claim::Fresh(fresh)),
                // Fresh but unreadable here (another build wrote it): claim as if absent.
                None => reply = self.protocol.claim(&fp, refresh_ahead, &token, true)?,
            }
        }
        let stale = self.value_of(&reply);
        match reply.kind.as_str() {
            "busy" => Ok(Claim::Busy {
                stale,
                lease_left: lease_left(&reply),
            }),
            "owned" => {
                self.renewer().hold(&self.protocol, &fp, &token.text);
                Ok(Claim::Owned {
                    lease: Lease::new(token.text, reply.generation),
                    stale,
                    failures: reply.failures,
                })
            }
            other => Err(Error::Protocol(format!("claim answered {other:?}")).into()),
        }
    }

    fn publish(
        &self,
        key: &K,
        lease: &Lease,
        value: &V,
        lifetime: Duration,
    ) -> Result<Publish, TierError> {
        let fp = self.fingerprint(key)?;
        if let Some(renewer) = self.shared.renewer.get() {
            renewer.drop_lease(lease.token());
        }
        let bytes = codec::encode(value)?;
        if bytes.len() > self.protocol.max_value {
            // Nobody could read it back: do not store it; end the lease at once (F8).
            tracing::warn!(
                len = bytes.len(),
                limit = self.protocol.max_value,
                "dogpile-redis: value over the size limit, not shared"
            );
            self.protocol.release(&fp, lease.token(), Duration::ZERO)?;
            return Ok(Publish::Rejected);
        }
        if self
            .protocol
            .publish(&fp, lease.token(), lease.generation(), &bytes, lifetime)?
        {
            Ok(Publish::Stored)
        } else {
            tracing::info!(key = %fp, "dogpile-redis: late publish rejected (lease lost or key invalidated, F5)");
            Ok(Publish::Rejected)
        }
    }

    fn release(&self, key: &K, lease: &Lease, hold: Duration) -> Result<(), TierError> {
        let fp = self.fingerprint(key)?;
        if let Some(renewer) = self.shared.renewer.get() {
            renewer.drop_lease(lease.token());
        }
        self.protocol.release(&fp, lease.token(), hold)?;
        Ok(())
    }

    fn invalidate(&self, key: &K) -> Result<(), TierError> {
        let fp = self.fingerprint(key)?;
        self.protocol.invalidate(&fp)?;
        Ok(())
    }

    fn remove(&self, key: &K) -> Result<(), TierError> {
        let fp = self.fingerprint(key)?;
        self.protocol.remove(&fp)?;
        Ok(())
    }

    /// Remembers the key, so that its events reach a copy stored with `Cache::insert`.
    fn track(&self, key: &K) {
        let _ = self.fingerprint(key);
    }

    /// Raises the scope's epochs in Redis: one script, whatever the number of keys
    /// (see the crate docs, "Fleet-wide `invalidate_all` and `clear`").
    fn invalidate_all(&self, hard: bool) -> Result<(), TierError> {
        self.protocol.invalidate_all(hard)?;
        Ok(())
    }

    fn subscribe(&self, events: EventSink<K>) {
        crate::events::subscribe(
            &self.shared.listeners,
            &self.shared.pool,
            &self.protocol,
            events,
        );
    }

    /// The namespace becomes `"{namespace}:{scope}"` (see [`RedisTier::scoped`]).
    fn scoped(self, scope: &str) -> Self {
        RedisTier::scoped(self, scope)
    }
}
