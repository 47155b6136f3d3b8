//! `RedisTier` as the [`SharedTier`] of a `dogpile::Cache`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dogpile::{Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;
use crate::protocol::Token;
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

    /// What a CLAIM reply for the slot `fp` under `token` means: a granted lease is
    /// renewed from now on (F5). A fresh reply's value must be readable.
    fn claim_of<V: DeserializeOwned>(
        &self,
        fp: &str,
        token: Token,
        reply: SlotReply,
    ) -> Result<Claim<V>, TierError> {
        let value = self.value_of(&reply);
        match (reply.kind.as_str(), value) {
            ("fresh", Some(fresh)) => Ok(Claim::Fresh(fresh)),
            ("busy", stale) => Ok(Claim::Busy {
                stale,
                lease_left: lease_left(&reply),
            }),
            ("owned", stale) => {
                self.renewer().hold(&self.protocol, fp, &token.text);
                Ok(Claim::Owned {
                    lease: Lease::new(token.text, reply.generation),
                    stale,
                    failures: reply.failures,
                })
            }
            (other, _) => Err(Error::Protocol(format!("claim answered {other:?}")).into()),
        }
    }

    /// A value nobody could read back: not stored, its lease ended at once (F8).
    fn oversized(&self, fp: &str, lease: &Lease, len: usize) -> Result<Publish, TierError> {
        tracing::warn!(
            len,
            limit = self.protocol.max_value,
            "dogpile-redis: value over the size limit, not shared"
        );
        self.protocol.release(fp, lease.token(), Duration::ZERO)?;
        Ok(Publish::Rejected)
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

/// A value of a batch's publish that is to be stored: its position in the batch, its
/// key's fingerprint, its lease, its encoding and its lifetime.
struct Storing<'a> {
    at: usize,
    fp: String,
    lease: &'a Lease,
    bytes: Vec<u8>,
    lifetime: Duration,
}

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
        self.claim_of(&fp, token, reply)
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
            return self.oversized(&fp, lease, bytes.len());
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

    /// One script per Redis node for all of `keys` (see the crate docs, "Batches").
    fn claim_many(&self, keys: &[K], refresh_ahead: Duration) -> Vec<Result<Claim<V>, TierError>> {
        let fps: Vec<Result<String, Error>> =
            keys.iter().map(|key| self.fingerprint(key)).collect();
        let epoch = match self.protocol.known_epoch() {
            Ok(epoch) => epoch,
            Err(err) => return keys.iter().map(|_| Err(err.copy().into())).collect(),
        };
        let asked: Vec<usize> = (0..keys.len()).filter(|&at| fps[at].is_ok()).collect();
        let asked_fps: Vec<&str> = asked
            .iter()
            .filter_map(|&at| fps[at].as_deref().ok())
            .collect();
        let tokens: Vec<Token> = asked
            .iter()
            .map(|_| Token::new(self.new_token(), epoch))
            .collect();
        let mut replies = self
            .protocol
            .claim_many(&asked_fps, refresh_ahead, &tokens, epoch)
            .into_iter()
            .zip(tokens);
        let mut claims = Vec::with_capacity(keys.len());
        for (key, fp) in keys.iter().zip(&fps) {
            let fp = match fp {
                Ok(fp) => fp,
                Err(err) => {
                    claims.push(Err(err.copy().into()));
                    continue;
                }
            };
            let (reply, token) = replies.next().expect("one reply per key asked");
            let claim = reply.map_err(TierError::from).and_then(|reply| {
                if reply.kind == "fresh" && self.value_of::<V>(&reply).is_none() {
                    // Fresh but unreadable here: claim it alone, as if absent.
                    return SharedTier::<K, V>::claim(self, key, refresh_ahead);
                }
                self.claim_of(fp, token, reply)
            });
            claims.push(claim);
        }
        claims
    }

    /// One script per Redis node for all of `entries`.
    fn publish_many(
        &self,
        entries: &[(&K, &Lease, &V, Duration)],
    ) -> Vec<Result<Publish, TierError>> {
        let mut answers: Vec<Option<Result<Publish, TierError>>> =
            Vec::with_capacity(entries.len());
        let mut storing: Vec<Storing<'_>> = Vec::new();
        for (at, &(key, lease, value, lifetime)) in entries.iter().enumerate() {
            let fp = match self.fingerprint(key) {
                Ok(fp) => fp,
                Err(err) => {
                    answers.push(Some(Err(err.into())));
                    continue;
                }
            };
            if let Some(renewer) = self.shared.renewer.get() {
                renewer.drop_lease(lease.token());
            }
            match codec::encode(value) {
                Ok(bytes) if bytes.len() <= self.protocol.max_value => {
                    storing.push(Storing {
                        at,
                        fp,
                        lease,
                        bytes,
                        lifetime,
                    });
                    answers.push(None);
                }
                Ok(bytes) => {
                    answers.push(Some(self.oversized(&fp, lease, bytes.len())));
                }
                Err(err) => answers.push(Some(Err(err.into()))),
            }
        }
        let batch: Vec<(&str, &str, u64, &[u8], Duration)> = storing
            .iter()
            .map(|s| {
                let (token, generation) = (s.lease.token(), s.lease.generation());
                (
                    s.fp.as_str(),
                    token,
                    generation,
                    s.bytes.as_slice(),
                    s.lifetime,
                )
            })
            .collect();
        let stored = self.protocol.publish_many(&batch);
        for (Storing { at, fp, .. }, stored) in storing.iter().zip(stored) {
            answers[*at] = Some(match stored {
                Ok(true) => Ok(Publish::Stored),
                Ok(false) => {
                    tracing::info!(key = %fp, "dogpile-redis: late publish rejected (lease lost or key invalidated, F5)");
                    Ok(Publish::Rejected)
                }
                Err(err) => Err(err.into()),
            });
        }
        answers
            .into_iter()
            .map(|answer| answer.expect("every entry answered"))
            .collect()
    }

    /// One script per Redis node for all of `entries` (F8).
    fn release_many(&self, entries: &[(&K, &Lease, Duration)]) -> Vec<Result<(), TierError>> {
        let fps: Vec<Result<String, Error>> = entries
            .iter()
            .map(|&(key, lease, _)| {
                if let Some(renewer) = self.shared.renewer.get() {
                    renewer.drop_lease(lease.token());
                }
                self.fingerprint(key)
            })
            .collect();
        let releasing: Vec<(&str, &str, Duration)> = fps
            .iter()
            .zip(entries)
            .filter_map(|(fp, &(_, lease, hold))| Some((fp.as_deref().ok()?, lease.token(), hold)))
            .collect();
        let mut released = self.protocol.release_many(&releasing).into_iter();
        fps.into_iter()
            .map(|fp| match fp {
                Ok(_) => released
                    .next()
                    .expect("one answer per lease")
                    .map(|_| ())
                    .map_err(Into::into),
                Err(err) => Err(err.into()),
            })
            .collect()
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
