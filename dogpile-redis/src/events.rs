//! Fleet-wide notifications (F6): a subscriber thread per subscribed cache turns the
//! namespace's pub/sub messages into [`TierEvent`]s for the keys this process has seen.
//!
//! A message names a key by fingerprint only (keys need not be deserializable), so each
//! listener remembers the keys that went through the tier in this process: exactly the
//! keys whose L1 copy came from, or went to, Redis.
//!
//! An epoch announcement (`invalidate_all`, `clear`) names no key: it reaches the whole
//! L1 of every listener of the scope. Each link, when it comes up, reads the scope's
//! epochs again, so a process that missed an announcement while its link was down
//! acts on it then.

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use dogpile::{EventSink, TierEvent};

use crate::conn::Pool;
use crate::epoch::{Epoch, EpochCell};
use crate::health::{cause_of, is_refusal};
use crate::protocol::{read_epoch, Protocol};
use crate::sync::{lock, read, write};

/// Keys remembered per listener; past this the longest-remembered key is forgotten and
/// its local copy invalidated (its next call asks the tier, R3): one key at a time, never
/// the whole L1 at once.
const MAX_REMEMBERED: usize = 1 << 17;
/// How often a silent subscription wakes up to check that the tier still exists.
const POLL: Duration = Duration::from_millis(200);
/// A silent subscription checks Redis is alive this often: a frozen Redis also looks
/// silent, and events published meanwhile would be missed.
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Pause between reconnect attempts.
const RECONNECT: Duration = Duration::from_millis(200);
/// Pause between subscriptions that Redis refused (ACL, credentials): an operator must
/// act first, so asking often only fills Redis's ACL log.
const REFUSED_RETRY: Duration = Duration::from_secs(5);

trait Listen: Send + Sync {
    fn channel(&self) -> &str;
    fn as_any(&self) -> &dyn Any;
}

struct Listener<K> {
    channel: String,
    sink: EventSink<K>,
    keys: Mutex<Remembered<K>>,
    /// The scope's epochs, shared with the tier's claims, and their key in Redis.
    epoch: Arc<EpochCell>,
    epoch_key: String,
    /// The epochs whose announcement this listener has applied to its cache's L1.
    applied: Mutex<Epoch>,
}

/// The keys a listener can map messages to, by fingerprint, in the order first seen.
struct Remembered<K> {
    by_fingerprint: HashMap<String, K>,
    order: VecDeque<String>,
    limit: usize,
}

impl<K> Remembered<K> {
    fn new(limit: usize) -> Self {
        Remembered {
            by_fingerprint: HashMap::new(),
            order: VecDeque::new(),
            limit,
        }
    }

    /// Remembers `key`; the key forgotten to make room, if any.
    fn insert(&mut self, fingerprint: &str, key: K) -> Option<K> {
        if self.by_fingerprint.contains_key(fingerprint) {
            return None;
        }
        let forgotten = if self.order.len() >= self.limit {
            self.order
                .pop_front()
                .and_then(|old| self.by_fingerprint.remove(&old))
        } else {
            None
        };
        self.by_fingerprint.insert(fingerprint.to_string(), key);
        self.order.push_back(fingerprint.to_string());
        forgotten
    }
}

impl<K: Clone + Send + Sync + 'static> Listen for Listener<K> {
    fn channel(&self) -> &str {
        &self.channel
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<K: Clone + Send + Sync + 'static> Listener<K> {
    fn remember(&self, fingerprint: &str, key: &K) {
        let mut keys = lock(&self.keys);
        if keys.by_fingerprint.contains_key(fingerprint) {
            return;
        }
        let forgotten = keys.insert(fingerprint, key.clone());
        drop(keys);
        if let Some(forgotten) = forgotten {
            // Its events can no longer reach its local copy: distrust that copy alone.
            (self.sink)(TierEvent::Invalidated(forgotten));
        }
    }

    /// Applies epochs heard of (an announcement, or a re-read at resubscription) to
    /// the L1: a newer hard epoch clears it, a newer soft one invalidates it.
    fn reach(&self, heard: Epoch) {
        self.epoch.learn(heard);
        let mut applied = lock(&self.applied);
        let event = if heard.hard > applied.hard {
            TierEvent::Cleared
        } else if heard.soft > applied.soft {
            TierEvent::InvalidatedAll
        } else {
            return;
        };
        applied.soft = applied.soft.max(heard.soft);
        applied.hard = applied.hard.max(heard.hard);
        drop(applied);
        (self.sink)(event);
    }

    fn deliver(&self, payload: &[u8]) {
        let Some((&op, fingerprint)) = payload.split_first() else {
            return;
        };
        let Ok(fingerprint) = std::str::from_utf8(fingerprint) else {
            return;
        };
        if op == b'e' {
            if let Some(heard) = Epoch::parse(fingerprint) {
                self.reach(heard);
            }
            return;
        }
        let key = {
            let keys = lock(&self.keys);
            match keys.by_fingerprint.get(fingerprint) {
                Some(key) => key.clone(),
                None => return, // never seen here: no L1 copy to act on
            }
        };
        let event = match op {
            b'i' => TierEvent::Invalidated(key),
            b'r' => TierEvent::Removed(key),
            b'p' => TierEvent::Published(key),
            b'l' => TierEvent::Released(key),
            _ => return,
        };
        (self.sink)(event);
    }
}

/// The listeners of one opened tier, of any key type.
#[derive(Default)]
pub(crate) struct Listeners {
    list: RwLock<Vec<Arc<dyn Listen>>>,
}

impl Listeners {
    /// Notes that `key` went through `tier`, so that its events reach the listeners of
    /// the tier's namespace with this key type.
    pub(crate) fn remember<K: Clone + Send + Sync + 'static>(
        &self,
        channel: &str,
        fingerprint: &str,
        key: &K,
    ) {
        let list = read(&self.list);
        for listener in list.iter().filter(|l| l.channel() == channel) {
            if let Some(listener) = listener.as_any().downcast_ref::<Listener<K>>() {
                listener.remember(fingerprint, key);
            }
        }
    }
}

/// Registers `sink` for `channel` with `listeners` and starts its subscriber thread,
/// which ends once `pool` is dropped (with every clone of its tier).
pub(crate) fn subscribe<K: Clone + Send + Sync + 'static>(
    listeners: &Listeners,
    pool: &Arc<Pool>,
    protocol: &Protocol,
    sink: EventSink<K>,
) {
    let epoch = protocol.epoch_cell();
    // Epochs this process read before this cache existed need no L1 action here.
    let applied = if epoch.is_known() {
        epoch.get()
    } else {
        Epoch::default()
    };
    let listener = Arc::new(Listener {
        channel: protocol.channel(),
        sink,
        keys: Mutex::new(Remembered::new(MAX_REMEMBERED)),
        epoch,
        epoch_key: protocol.epoch_key(),
        applied: Mutex::new(applied),
    });
    write(&listeners.list).push(listener.clone());
    let pool = Arc::downgrade(pool);
    std::thread::Builder::new()
        .name("dogpile-redis-events".into())
        .spawn(move || listen(pool, listener))
        .expect("dogpile-redis: cannot spawn the notification thread");
}

fn listen<K: Clone + Send + Sync + 'static>(weak: Weak<Pool>, listener: Arc<Listener<K>>) {
    let mut linked_before = false;
    // Which node to link through (on a cluster): the next one after each failure.
    let mut attempt = 0;
    loop {
        let Some(pool) = weak.upgrade() else { return };
        let mut con = match pool.connect_listener(attempt) {
            Ok(con) => con,
            Err(err) => {
                // Refused credentials (R5) are not retried every moment: an operator
                // must act first.
                let refused = is_refusal(&err);
                if refused {
                    pool.health.report(
                        &cause_of(&err),
                        "Redis refused the notification link's credentials",
                        &err,
                    );
                    pool.health.subscription_refused(Some(err.to_string()));
                }
                attempt += 1;
                drop(pool);
                std::thread::sleep(if refused { REFUSED_RETRY } else { RECONNECT });
                continue;
            }
        };
        // Keys that went through the tier before this subscription was asked for may
        // have had events nobody heard.
        let seen_keys = !lock(&listener.keys).order.is_empty();
        match subscribe_to(&mut con, &listener.channel) {
            Ok(()) => pool.health.subscription_refused(None),
            Err(Subscribe::Refused(why)) => {
                // F6 cannot hold for this process: say so (ping, the log), and keep
                // the local copies, which a reset would only recreate (F7).
                pool.health.report(
                    "subscription refused",
                    "Redis refused the notification subscription: invalidate and remove elsewhere do not reach this process",
                    &why,
                );
                pool.health.subscription_refused(Some(why));
                drop(pool);
                std::thread::sleep(REFUSED_RETRY);
                continue;
            }
            Err(Subscribe::Failed) => {
                attempt += 1;
                drop(pool);
                std::thread::sleep(RECONNECT);
                continue;
            }
        }
        let mut pubsub = con.as_pubsub();
        if pubsub.set_read_timeout(Some(POLL)).is_err() {
            attempt += 1;
            drop(pool);
            std::thread::sleep(RECONNECT);
            continue;
        }
        if linked_before || seen_keys {
            // Events published while the link was down, or before it first came up
            // for keys that already went through the tier, are lost (F6).
            (listener.sink)(TierEvent::Reset);
        }
        // An `invalidate_all` or `clear` announced while the link was down: the epochs
        // read after subscribing miss none (a later one is announced on this link).
        // If Redis cannot answer now, the link is tried again.
        match read_epoch(&pool, &listener.epoch_key, &listener.epoch) {
            Ok(epoch) => listener.reach(epoch),
            Err(_) => {
                attempt += 1;
                drop(pool);
                std::thread::sleep(RECONNECT);
                continue;
            }
        }
        linked_before = true;
        let own_node_health = pool.is_cluster();
        drop(pool);
        let mut heard = Instant::now();
        loop {
            match pubsub.get_message() {
                Ok(message) => {
                    heard = Instant::now();
                    listener.deliver(message.get_payload_bytes());
                }
                Err(err) if err.is_timeout() => {
                    let Some(pool) = weak.upgrade() else { return };
                    if heard.elapsed() >= HEALTH_EVERY {
                        let alive = if own_node_health {
                            // The link's own node, whatever the rest of the cluster does.
                            pubsub.ping::<redis::Value>().is_ok()
                        } else {
                            pool.run(|con| redis::cmd("PING").query::<String>(con))
                                .is_ok()
                        };
                        if !alive {
                            break;
                        }
                        heard = Instant::now();
                    }
                }
                Err(_) => break,
            }
        }
        attempt += 1;
        if let Some(pool) = weak.upgrade() {
            pool.health.report(
                "notification link lost",
                "notification link lost, local copies distrusted",
                &listener.channel,
            );
        }
        (listener.sink)(TierEvent::Reset);
    }
}

/// Why a subscription did not start.
enum Subscribe {
    /// Redis answered with an error (NOPERM for an ACL user without the channel,
    /// NOAUTH without the password): retrying soon will not help.
    Refused(String),
    /// The connection failed.
    Failed,
}

/// Subscribes `con` to `channel` and checks Redis's answer (the `redis` crate's
/// `PubSub::subscribe` takes an error reply for a confirmation).
fn subscribe_to(con: &mut redis::Connection, channel: &str) -> Result<(), Subscribe> {
    let command = redis::cmd("SUBSCRIBE").arg(channel).get_packed_command();
    con.send_packed_command(&command)
        .map_err(|_| Subscribe::Failed)?;
    match con.recv_response() {
        Ok(redis::Value::Array(reply)) | Ok(redis::Value::Push { data: reply, .. }) if matches!(reply.first(), Some(redis::Value::BulkString(kind)) if kind == b"subscribe") => {
            Ok(())
        }
        Ok(redis::Value::ServerError(err)) => Err(Subscribe::Refused(format!(
            "{} {}",
            err.code(),
            err.details().unwrap_or_default()
        ))),
        Err(err) if err.code().is_some() => Err(Subscribe::Refused(err.to_string())),
        Ok(other) => Err(Subscribe::Refused(format!("unexpected answer {other:?}"))),
        Err(_) => Err(Subscribe::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_one_key_is_forgotten_and_invalidated_not_all() {
        // R3: a listener that saw more keys than it remembers distrusts the oldest
        // key's copy only, never the whole L1 (which would cost a script per key).
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let listener = Listener {
            channel: "c".into(),
            sink: Arc::new(move |event| lock(&seen).push(event)),
            keys: Mutex::new(Remembered::new(3)),
            epoch: Arc::default(),
            epoch_key: "e".into(),
            applied: Mutex::default(),
        };
        for n in 0..5u32 {
            listener.remember(&format!("fp{n}"), &n);
        }
        listener.remember("fp4", &4); // already remembered: nothing forgotten
        assert_eq!(
            *lock(&events),
            vec![TierEvent::Invalidated(0), TierEvent::Invalidated(1)]
        );
        listener.deliver(b"rfp0");
        listener.deliver(b"rfp3");
        assert_eq!(lock(&events).last(), Some(&TierEvent::Removed(3)));
        assert_eq!(lock(&events).len(), 3, "fp0 was forgotten: no event for it");
    }
}
