//! The Redis side of one namespace: the keys of a slot, the notification channel, and
//! the calls of the scripts. The tier, the lease renewer and the notification listener
//! each hold this (or its pool), never the tier itself.

use std::sync::Arc;
use std::time::Duration;

use crate::conn::Pool;
use crate::scripts::{self, SlotReply};
use crate::Error;

/// How long Redis keeps a slot nobody publishes, invalidates or removes.
pub(crate) const RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One namespace's calls on Redis, under the settings of one tier. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Protocol {
    pub(crate) pool: Arc<Pool>,
    pub(crate) namespace: Arc<str>,
    pub(crate) lease: Duration,
    pub(crate) max_value: usize,
}

impl Protocol {
    /// The Redis keys of the slot with this key fingerprint: value hash and lease.
    pub(crate) fn slot_keys(&self, fingerprint: &str) -> [String; 2] {
        let tag = format!("dogpile:{{{}:{fingerprint}}}", self.namespace);
        [format!("{tag}:v"), format!("{tag}:l")]
    }

    /// The notification channel of this namespace (F6).
    pub(crate) fn channel(&self) -> String {
        format!("dogpile:{}:events", self.namespace)
    }

    pub(crate) fn lookup(&self, fp: &str) -> Result<SlotReply, Error> {
        let [value, lease] = self.slot_keys(fp);
        self.pool.run(|con| {
            scripts::LOOKUP_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(self.max_value)
                .invoke(con)
        })
    }

    pub(crate) fn claim(
        &self,
        fp: &str,
        ttl: Duration,
        token: &str,
        force: bool,
    ) -> Result<SlotReply, Error> {
        let [value, lease] = self.slot_keys(fp);
        self.pool.run(|con| {
            scripts::CLAIM_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(self.max_value)
                .arg(millis(ttl))
                .arg(token)
                .arg(millis(self.lease))
                .arg(if force { "1" } else { "0" })
                .invoke(con)
        })
    }

    pub(crate) fn publish(
        &self,
        fp: &str,
        token: &str,
        generation: u64,
        bytes: &[u8],
    ) -> Result<bool, Error> {
        let [value, lease] = self.slot_keys(fp);
        let stored: i64 = self.pool.run(|con| {
            scripts::PUBLISH_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(token)
                .arg(generation)
                .arg(bytes)
                .arg(millis(RETENTION))
                .arg(self.channel())
                .arg(fp)
                .invoke(con)
        })?;
        Ok(stored == 1)
    }

    pub(crate) fn release(&self, fp: &str, token: &str) -> Result<bool, Error> {
        let [value, lease] = self.slot_keys(fp);
        let released: i64 = self.pool.run(|con| {
            scripts::RELEASE_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(token)
                .arg(self.channel())
                .arg(fp)
                .invoke(con)
        })?;
        Ok(released == 1)
    }

    /// Renews the lease of `lease_key`; `Ok(false)` when it is no longer `token`'s.
    pub(crate) fn renew(&self, fp: &str, token: &str) -> Result<bool, Error> {
        let [value, lease_key] = self.slot_keys(fp);
        let renewed: i64 = self.pool.run(|con| {
            scripts::RENEW_SCRIPT
                .key(&value)
                .key(&lease_key)
                .arg(token)
                .arg(millis(self.lease))
                .invoke(con)
        })?;
        Ok(renewed == 1)
    }

    pub(crate) fn invalidate(&self, fp: &str, ttl: Duration) -> Result<(), Error> {
        let [value, lease] = self.slot_keys(fp);
        self.pool.run(|con| {
            scripts::INVALIDATE_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(millis(ttl))
                .arg(millis(RETENTION))
                .arg(self.channel())
                .arg(fp)
                .invoke::<i64>(con)
        })?;
        Ok(())
    }

    pub(crate) fn remove(&self, fp: &str) -> Result<(), Error> {
        let [value, lease] = self.slot_keys(fp);
        self.pool.run(|con| {
            scripts::REMOVE_SCRIPT
                .key(&value)
                .key(&lease)
                .arg(millis(RETENTION))
                .arg(self.channel())
                .arg(fp)
                .invoke::<i64>(con)
        })?;
        Ok(())
    }
}

/// Whole milliseconds, at least 1 (Redis rejects a zero expiry).
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
