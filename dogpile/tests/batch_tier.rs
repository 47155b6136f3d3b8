//! Batches with a fleet tier: each tier step of a creator call's keys is one call of the
//! tier's batch methods (`claim_many`, `publish_many`, `release_many`), never one call
//! per key, and every per-key rule holds (F1, F2, F5, F8). Two caches on one in-process
//! tier stand for two processes; every wait is bounded. Also: a cache of either entry
//! layout (bounded or not) binds its tier to its own entries.

use support::common;

use common::{bounded, eventually};
use dogpile::{
    Cache, Claim, EventSink, Lease, Publish, SharedTier, SharedValue, TierError, TierEvent,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(60);
const LEASE: Duration = Duration::from_secs(5);

/// What the tier holds, and every call made to it by method name, with its keys.
#[derive(Default)]
struct State {
    values: HashMap<u32, (u32, Instant, Duration)>,
    leases: HashMap<u32, String>,
    tokens: u64,
    calls: Vec<(&'static str, Vec<u32>)>,
    sinks: Vec<EventSink<u32>>,
}

/// An in-process fleet tier: values, leases and events shared by the caches built on
/// its clones.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<State>>);

impl Ledger {
    fn calls(&self, method: &str) -> Vec<Vec<u32>> {
        let state = self.0.lock().unwrap();
        let calls = state.calls.iter().filter(|(name, _)| *name == method);
        calls.map(|(_, keys)| keys.clone()).collect()
    }

    /// Another process publishes `key`: stored, and told to every cache (F6).
    fn publish_elsewhere(&self, key: u32, value: u32) {
        let sinks = {
            let mut state = self.0.lock().unwrap();
            state.leases.remove(&key);
            state.values.insert(key, (value, Instant::now(), TTL));
            state.sinks.clone()
        };
        sinks
            .iter()
            .for_each(|sink| sink(TierEvent::Published(key)));
    }

    /// A tier event from another process, told to every cache (F6).
    fn tell(&self, event: TierEvent<u32>) {
        let sinks = self.0.lock().unwrap().sinks.clone();
        sinks.iter().for_each(|sink| sink(event.clone()));
    }

    fn record(state: &mut State, method: &'static str, keys: Vec<u32>) {
        state.calls.push((method, keys));
    }

    fn current(state: &State, key: u32) -> Option<SharedValue<u32>> {
        let current = state.values.get(&key);
        current.map(|&(value, at, lifetime)| SharedValue {
            value,
            age: at.elapsed(),
            lifetime,
        })
    }

    fn claim_one(state: &mut State, key: u32, refresh_ahead: Duration) -> Claim<u32> {
        match Self::current(state, key) {
            Some(fresh) if fresh.is_fresh(refresh_ahead) => Claim::Fresh(fresh),
            stale if state.leases.contains_key(&key) => Claim::Busy {
                stale,
                lease_left: LEASE,
            },
            stale => {
                state.tokens += 1;
                let token = format!("t{}", state.tokens);
                state.leases.insert(key, token.clone());
                Claim::Owned {
                    lease: Lease::new(token, 0),
                    stale,
                    failures: 0,
                }
            }
        }
    }

    fn publish_one(
        state: &mut State,
        key: u32,
        lease: &Lease,
        value: u32,
        lifetime: Duration,
    ) -> Publish {
        if state.leases.get(&key).map(String::as_str) != Some(lease.token()) {
            return Publish::Rejected;
        }
        state.leases.remove(&key);
        state.values.insert(key, (value, Instant::now(), lifetime));
        Publish::Stored
    }
}

impl SharedTier<u32, u32> for Ledger {
    fn lookup(&self, key: &u32) -> Result<Option<SharedValue<u32>>, TierError> {
        Ok(Self::current(&self.0.lock().unwrap(), *key))
    }
    fn claim(&self, key: &u32, refresh_ahead: Duration) -> Result<Claim<u32>, TierError> {
        let mut state = self.0.lock().unwrap();
        Self::record(&mut state, "claim", vec![*key]);
        Ok(Self::claim_one(&mut state, *key, refresh_ahead))
    }
    fn claim_many(
        &self,
        keys: &[u32],
        refresh_ahead: Duration,
    ) -> Vec<Result<Claim<u32>, TierError>> {
        let mut state = self.0.lock().unwrap();
        Self::record(&mut state, "claim_many", keys.to_vec());
        keys.iter()
            .map(|&key| Ok(Self::claim_one(&mut state, key, refresh_ahead)))
            .collect()
    }
    fn publish(
        &self,
        key: &u32,
        lease: &Lease,
        value: &u32,
        lifetime: Duration,
    ) -> Result<Publish, TierError> {
        let mut state = self.0.lock().unwrap();
        Self::record(&mut state, "publish", vec![*key]);
        Ok(Self::publish_one(&mut state, *key, lease, *value, lifetime))
    }
    fn publish_many(
        &self,
        entries: &[(&u32, &Lease, &u32, Duration)],
    ) -> Vec<Result<Publish, TierError>> {
        let mut state = self.0.lock().unwrap();
        let keys = entries.iter().map(|(key, ..)| **key).collect();
        Self::record(&mut state, "publish_many", keys);
        entries
            .iter()
            .map(|&(key, lease, value, lifetime)| {
                Ok(Self::publish_one(&mut state, *key, lease, *value, lifetime))
            })
            .collect()
    }
    fn release(&self, key: &u32, lease: &Lease, _hold: Duration) -> Result<(), TierError> {
        let mut state = self.0.lock().unwrap();
        Self::record(&mut state, "release", vec![*key]);
        if state.leases.get(key).map(String::as_str) == Some(lease.token()) {
            state.leases.remove(key);
        }
        Ok(())
    }
    fn release_many(&self, entries: &[(&u32, &Lease, Duration)]) -> Vec<Result<(), TierError>> {
        let mut state = self.0.lock().unwrap();
        let keys = entries.iter().map(|(key, ..)| **key).collect();
        Self::record(&mut state, "release_many", keys);
        for (key, lease, _hold) in entries {
            if state.leases.get(key).map(String::as_str) == Some(lease.token()) {
                state.leases.remove(key);
            }
        }
        entries.iter().map(|_| Ok(())).collect()
    }
    fn invalidate(&self, _: &u32) -> Result<(), TierError> {
        Ok(())
    }
    fn remove(&self, _: &u32) -> Result<(), TierError> {
        Ok(())
    }
    fn subscribe(&self, events: EventSink<u32>) {
        self.0.lock().unwrap().sinks.push(events);
    }
    fn scoped(self, _: &str) -> Self {
        self
    }
}

/// Each value's lifetime: `ttl_with` by the value.
fn lifetime_of(id: u32) -> Duration {
    TTL + Duration::from_secs(u64::from(id))
}

fn cache_on(tier: &Ledger) -> Cache<u32, u32> {
    Cache::builder()
        .ttl(TTL)
        .ttl_with(|&id: &u32, _: &u32| lifetime_of(id))
        .shared(tier.clone())
        .build()
}

fn value_of(id: u32) -> u32 {
    id * 7 + 1
}

#[test]
fn a_batch_takes_each_tier_step_once_for_all_its_keys() {
    let tier = Ledger::default();
    let (here, elsewhere) = (cache_on(&tier), cache_on(&tier));
    let mut asked = Vec::new();
    let values = here.get_many_with(&[1, 2, 3, 4, 1], |ids| {
        asked.push(ids.to_vec());
        ids.iter().map(|&id| value_of(id)).collect()
    });
    assert_eq!(values, [1, 2, 3, 4, 1].map(value_of));
    assert_eq!(asked, [vec![1, 2, 3, 4]]);
    assert_eq!(tier.calls("claim_many"), [vec![1, 2, 3, 4]]);
    assert_eq!(tier.calls("publish_many"), [vec![1, 2, 3, 4]]);
    // Each value is published with its own lifetime (R6).
    let lifetimes: Vec<Duration> = [1, 2, 3, 4]
        .iter()
        .map(|key| tier.0.lock().unwrap().values[key].2)
        .collect();
    assert_eq!(lifetimes, [1, 2, 3, 4].map(lifetime_of));
    assert!(tier.calls("claim").is_empty() && tier.calls("publish").is_empty());

    // Another process: the tier's values are served (F1, F4); only key 5 is created.
    let mut asked = Vec::new();
    let values = elsewhere.get_many_with(&[4, 5, 2], |ids| {
        asked.push(ids.to_vec());
        ids.iter().map(|&id| value_of(id)).collect()
    });
    assert_eq!(values, [4, 5, 2].map(value_of));
    assert_eq!(asked, [vec![5]]);
    assert_eq!(tier.calls("claim_many")[1], [4, 5, 2]);
    assert_eq!(tier.calls("publish_many")[1], [5]);
    assert_eq!(elsewhere.stats().tier_hits, 2);
}

#[test]
fn a_failed_batch_releases_every_lease_at_once() {
    let tier = Ledger::default();
    let cache = cache_on(&tier);
    let failed = cache.try_get_many_with(&[1, 2, 3], |_| Err::<Vec<u32>, _>("down"));
    assert_eq!(failed, Err("down"));
    assert_eq!(tier.calls("release_many"), [vec![1, 2, 3]]);
    assert!(tier.calls("release").is_empty() && tier.calls("publish_many").is_empty());
    assert!(
        tier.0.lock().unwrap().leases.is_empty(),
        "F8: no lease left"
    );

    // A panicking creator releases them all at once too.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.get_many_with(&[4, 5], |_| panic!("creator bug"))
    }));
    assert!(panicked.is_err());
    assert_eq!(tier.calls("release_many")[1], [4, 5]);
    assert!(
        tier.0.lock().unwrap().leases.is_empty(),
        "F8: no lease left"
    );
}

#[test]
fn a_batch_waits_for_a_cold_key_another_process_creates() {
    let tier = Ledger::default();
    // Another process holds key 9's lease: it is creating it (F2).
    tier.0.lock().unwrap().leases.insert(9, "elsewhere".into());
    let cache = Arc::new(cache_on(&tier));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let batch = {
        let (cache, asked) = (cache.clone(), asked.clone());
        thread::spawn(move || {
            cache.get_many_with(&[8, 9], |ids| {
                asked.lock().unwrap().push(ids.to_vec());
                ids.iter().map(|&id| value_of(id)).collect()
            })
        })
    };
    // Key 8 is created and published first, then the batch waits for key 9 holding no
    // lease.
    eventually("key 8 published", || {
        tier.calls("publish_many") == [vec![8]]
    });
    assert!(!tier.0.lock().unwrap().leases.contains_key(&8));
    tier.publish_elsewhere(9, 99);
    let values = bounded("the batch", move || batch.join().unwrap());
    assert_eq!(values, [value_of(8), 99]);
    assert_eq!(*asked.lock().unwrap(), [vec![8]], "F2: never created here");
    let claims = tier.calls("claim_many");
    assert_eq!(claims[0], [8, 9]);
    assert!(claims[1..].iter().all(|keys| keys == &[9]), "{claims:?}");
}

/// Both entry layouts bind the tier: an unbounded cache's, and a bounded cache's (its
/// entries carry S3-FIFO's mark). Either way a creation goes through the tier and the
/// tier's events reach the cache's own entries (F6).
#[test]
fn a_cache_of_either_layout_binds_its_tier_to_its_own_entries() {
    for capacity in [None, Some(10)] {
        let tier = Ledger::default();
        let builder = Cache::builder().ttl(TTL);
        let builder = match capacity {
            Some(capacity) => builder.capacity(capacity),
            None => builder,
        };
        let cache: Cache<u32, u32> = builder.shared(tier.clone()).build();
        assert_eq!(cache.get_with(1, || value_of(1)), value_of(1));
        assert_eq!(tier.calls("claim"), [vec![1]], "capacity {capacity:?}");
        assert_eq!(tier.calls("publish"), [vec![1]], "capacity {capacity:?}");
        assert!(cache.contains_key(&1));
        // Another process removed key 1: this cache's copy goes too.
        tier.tell(TierEvent::Removed(1));
        assert!(!cache.contains_key(&1), "capacity {capacity:?}");
        assert_eq!(cache.len(), 0, "capacity {capacity:?}");
    }
}
