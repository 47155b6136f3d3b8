//! Lease renewal (F5): one thread per opened tier renews every lease this process holds
//! at a third of its length, until the lease is published or released; the leases due
//! together (a batch's) are renewed with one script per Redis node. A frozen process
//! stops renewing too, so its lease runs out and another process takes over.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::protocol::Protocol;
use crate::sync::lock;

struct Held {
    protocol: Protocol,
    fingerprint: String,
    due: Instant,
}

pub(crate) struct Renewer {
    /// By owner token: the namespace's calls (with the lease), the key fingerprint, when
    /// to renew.
    held: Mutex<HashMap<String, Held>>,
    wake: Condvar,
}

impl Renewer {
    /// A renewer with its thread, which ends once the renewer is dropped.
    pub(crate) fn start() -> Arc<Renewer> {
        let renewer = Arc::new(Renewer {
            held: Mutex::new(HashMap::new()),
            wake: Condvar::new(),
        });
        let weak = Arc::downgrade(&renewer);
        std::thread::Builder::new()
            .name("dogpile-redis-renew".into())
            .spawn(move || run(weak))
            .expect("dogpile-redis: cannot spawn the lease renewal thread");
        renewer
    }

    pub(crate) fn hold(&self, protocol: &Protocol, fingerprint: &str, token: &str) {
        let mut held = lock(&self.held);
        let held_lease = Held {
            protocol: protocol.clone(),
            fingerprint: fingerprint.to_string(),
            due: Instant::now() + protocol.lease / 3,
        };
        held.insert(token.to_string(), held_lease);
        self.wake.notify_all();
    }

    pub(crate) fn drop_lease(&self, token: &str) {
        let mut held = lock(&self.held);
        held.remove(token);
    }
}

fn run(renewer: Weak<Renewer>) {
    while let Some(renewer) = renewer.upgrade() {
        let held = lock(&renewer.held);
        // Each lease is renewed at a third of its length, so that two missed round
        // trips still leave time; idle, look every half second whether the tier is gone.
        let now = Instant::now();
        let wait = held
            .values()
            .map(|h| h.due.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_millis(500));
        let (mut held, _) = renewer
            .wake
            .wait_timeout(held, wait)
            .unwrap_or_else(|e| e.into_inner());
        // The leases due within a tenth of their length are renewed now too: a batch's
        // leases, taken together, are renewed together (one script per node).
        let now = Instant::now();
        let mut due: Vec<(Protocol, Vec<(String, String)>)> = Vec::new();
        for (token, h) in held
            .iter_mut()
            .filter(|(_, h)| h.due <= now + h.protocol.lease / 10)
        {
            h.due = now + h.protocol.lease / 3;
            let lease = (h.fingerprint.clone(), token.clone());
            match due.iter_mut().find(|(p, _)| same_calls(p, &h.protocol)) {
                Some((_, leases)) => leases.push(lease),
                None => due.push((h.protocol.clone(), vec![lease])),
            }
        }
        drop(held);
        for (protocol, leases) in due {
            let entries: Vec<(&str, &str)> = leases
                .iter()
                .map(|(fp, token)| (fp.as_str(), token.as_str()))
                .collect();
            for ((fp, token), renewed) in leases.iter().zip(protocol.renew_many(&entries)) {
                match renewed {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(key = %fp, "dogpile-redis: lease lost (expired or fenced)");
                        renewer.drop_lease(token);
                    }
                    Err(err) => {
                        tracing::debug!(%err, key = %fp, "dogpile-redis: lease renewal failed")
                    }
                }
            }
        }
    }
}

/// Whether two namespaces' calls are the same: one connection pool, namespace and lease.
fn same_calls(a: &Protocol, b: &Protocol) -> bool {
    Arc::ptr_eq(&a.pool, &b.pool) && a.namespace == b.namespace && a.lease == b.lease
}
