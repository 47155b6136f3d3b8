//! A batch's steps in the tier: the claims, publishes and releases of its keys each
//! taken with one call of the tier's batch methods (a few round trips, never one per
//! key), and one wait for whichever of its cold keys another process creates (F2).
//! Each key keeps its own lease (F5), its own answer and its own events (F6).

use super::level::{published, wait_off_thread, Begin, ColdWait, TierLevel};
use super::{Lease, TierError};
use crate::slot::Provenance;
use std::hash::Hash;
use std::time::Duration;

impl<K, V> TierLevel<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// For each of `keys`, each held by this caller alone in this process (F3): serve
    /// the tier's value, create (under a lease when the tier granted one), or wait for
    /// another process's. `colds` bound each key's wait for another process (F2), and
    /// `failures` get each owned key's failures in a row fleet-wide (for its back-off),
    /// both kept by the caller across its rounds. One [`claim_many`] for every key
    /// without a held stale copy.
    ///
    /// [`claim_many`]: super::SharedTier::claim_many
    pub(crate) fn begin_many(
        &self,
        keys: &[K],
        colds: &mut [ColdWait],
        failures: &mut [u32],
    ) -> Vec<Begin<V>> {
        let mut begins: Vec<Option<Begin<V>>> = keys
            .iter()
            .map(|key| self.held_copy(key).map(Begin::Serve))
            .collect();
        let asked: Vec<K> = keys
            .iter()
            .zip(&begins)
            .filter(|(_, begin)| begin.is_none())
            .map(|(key, _)| key.clone())
            .collect();
        if !asked.is_empty() {
            // On the board before the claims (see `begin`).
            for key in &asked {
                self.board.hold(key.clone());
            }
            let mut claims = self
                .tier
                .claim_many(&asked, self.refresh_ahead())
                .into_iter();
            for (index, begin) in begins.iter_mut().enumerate() {
                if begin.is_none() {
                    // A tier that answers fewer claims than asked: the rest follow the
                    // local rules (F7).
                    let claim = claims.next().unwrap_or_else(|| Err(too_few()));
                    let (cold, failures) = (&mut colds[index], &mut failures[index]);
                    *begin = Some(self.settle(&keys[index], claim, cold, failures));
                }
            }
        }
        begins
            .into_iter()
            .map(|begin| begin.expect("dogpile: internal error: a batch key without answer"))
            .collect()
    }

    /// Publishes each created value with its lifetime (R6) under its key's lease (F5),
    /// with one [`publish_many`](super::SharedTier::publish_many); how each is to be
    /// stamped in L1.
    pub(crate) fn publish_many(&self, entries: &[(&K, &Lease, &V)]) -> Vec<Provenance> {
        if entries.is_empty() {
            return Vec::new();
        }
        let entries: Vec<(&K, &Lease, &V, Duration)> = entries
            .iter()
            .map(|&(key, lease, value)| (key, lease, value, self.lifetime_of(key, value)))
            .collect();
        let mut answers = self.tier.publish_many(&entries).into_iter();
        entries
            .iter()
            .map(|&(.., lifetime)| {
                let answer = answers.next().unwrap_or_else(|| Err(too_few()));
                published(answer, lifetime)
            })
            .collect()
    }

    /// Gives every lease of a failed creator call up at once (F8), each key held for
    /// its back-off after `failures` (its failures in a row before this one) fleet-wide;
    /// a tier that fails lets them run out (F5).
    pub(crate) fn release_many(&self, entries: &[(&K, &Lease, u32)]) {
        if entries.is_empty() {
            return;
        }
        let entries: Vec<(&K, &Lease, Duration)> = entries
            .iter()
            .map(|&(key, lease, failures)| {
                (key, lease, self.hold_after(failures.saturating_add(1)))
            })
            .collect();
        let _ = self.tier.release_many(&entries);
    }

    /// The tier's notifications so far: read before a round of claims, and handed to
    /// [`wait_for_events`](TierLevel::wait_for_events) after it.
    pub(crate) fn events_seen(&self) -> u64 {
        self.board.epoch()
    }

    /// Waits for a notification after `seen` (a publish or a release elsewhere wakes a
    /// cold key's waiters, F2), at most `timeout`: by parking when `blocking`, else by
    /// awaiting.
    pub(crate) async fn wait_for_events(&self, seen: u64, timeout: Duration, blocking: bool) {
        if blocking {
            self.board.wait(seen, timeout);
        } else {
            wait_off_thread(self.board.clone(), seen, timeout).await;
        }
    }
}

fn too_few() -> TierError {
    TierError::new("the tier answered fewer keys than it was asked")
}
