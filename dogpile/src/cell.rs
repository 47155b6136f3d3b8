//! The value store of the single-slot types: a lock around one stamped value.

use crate::slot::{Provenance, Stamped, Store};
use parking_lot::RwLock;

/// Readers share the lock (a fresh hit takes no exclusive lock, R2); the writer holds
/// it only to swap the value and its stamp together (R3).
pub(crate) struct ValueCell<V> {
    value: RwLock<Option<Stamped<V>>>,
    /// Every value's lifetime, in nanoseconds.
    ttl: u64,
}

impl<V: Clone> ValueCell<V> {
    pub(crate) fn new(ttl: u64) -> Self {
        ValueCell {
            value: RwLock::new(None),
            ttl,
        }
    }

    /// Runs `read` on the current value under the shared lock.
    #[inline]
    pub(crate) fn with<R>(&self, read: impl FnOnce(Option<&Stamped<V>>) -> R) -> R {
        read(self.value.read().as_ref())
    }

    /// R7: the value stays, but is stale from now on.
    pub(crate) fn invalidate(&self) {
        if let Some(stamped) = self.value.write().as_mut() {
            stamped.invalidate();
        }
    }
}

impl<V: Clone> Store for ValueCell<V> {
    type Value = V;

    fn load(&self) -> Option<Stamped<V>> {
        self.value.read().clone()
    }

    /// A single-slot type has no tier: every value is made here.
    fn publish(&self, value: V, created: u64, _: Provenance) {
        *self.value.write() = Some(Stamped::new(value, created.saturating_add(self.ttl)));
    }
}
