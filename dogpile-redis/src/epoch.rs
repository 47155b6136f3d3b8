//! The epochs of a scope (fleet-wide `invalidate_all` and `clear`, F6): two counters in
//! Redis under the scope, `soft` and `hard`, as this process knows them.
//!
//! `invalidate_all` raises `soft`; `clear` raises both. Every value is stored with the
//! epochs its claim was granted under; a claim carries the epochs the process knows,
//! and a value of an older `hard` epoch counts as absent (R1), one of an older `soft`
//! epoch as stale (R3). Epochs only grow: a process takes the larger of what it knew
//! and what it hears (an announcement, a re-read, a value's own epochs).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::sync::lock;

/// The epochs of one scope as this process knows them.
#[derive(Default)]
pub(crate) struct EpochCell {
    soft: AtomicU64,
    hard: AtomicU64,
    /// Whether they were read from Redis once: before that, a claim reads them first.
    known: AtomicBool,
}

impl EpochCell {
    /// `(soft, hard)`.
    pub(crate) fn get(&self) -> Epoch {
        Epoch {
            soft: self.soft.load(Ordering::Acquire),
            hard: self.hard.load(Ordering::Acquire),
        }
    }

    /// Takes the larger of each counter.
    pub(crate) fn learn(&self, epoch: Epoch) {
        self.soft.fetch_max(epoch.soft, Ordering::AcqRel);
        self.hard.fetch_max(epoch.hard, Ordering::AcqRel);
    }

    pub(crate) fn is_known(&self) -> bool {
        self.known.load(Ordering::Acquire)
    }

    /// Learns `epoch` as read from Redis.
    pub(crate) fn read(&self, epoch: Epoch) {
        self.learn(epoch);
        self.known.store(true, Ordering::Release);
    }
}

/// A pair of epochs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Epoch {
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

impl Epoch {
    /// The announcement's payload after its `e`: `"{soft}:{hard}"`.
    pub(crate) fn parse(text: &str) -> Option<Epoch> {
        let (soft, hard) = text.split_once(':')?;
        Some(Epoch {
            soft: soft.parse().ok()?,
            hard: hard.parse().ok()?,
        })
    }
}

/// The cells of every scope of one opened tier, shared by its clones.
#[derive(Default)]
pub(crate) struct Epochs {
    by_scope: Mutex<HashMap<Arc<str>, Arc<EpochCell>>>,
}

impl Epochs {
    pub(crate) fn cell(&self, scope: &Arc<str>) -> Arc<EpochCell> {
        lock(&self.by_scope)
            .entry(scope.clone())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_only_grow_and_parse_from_announcements() {
        let cell = EpochCell::default();
        assert!(!cell.is_known());
        cell.read(Epoch { soft: 3, hard: 1 });
        cell.learn(Epoch { soft: 2, hard: 2 });
        assert!(cell.is_known());
        assert_eq!(cell.get(), Epoch { soft: 3, hard: 2 });
        assert_eq!(Epoch::parse("7:4"), Some(Epoch { soft: 7, hard: 4 }));
        assert_eq!(Epoch::parse("7"), None);
        assert_eq!(Epoch::parse("x:1"), None);
    }
}
