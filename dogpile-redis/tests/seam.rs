//! The seam's side of F3, with a scripted tier where a race must be forced: a
//! notification that arrives between a claim's reply and the L1 store is not lost.
//! (Every other behaviour of the fleet tier is tested against a real redis-server.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dogpile::{
    Cache, Claim, EventSink, Lease, ManualClock, Publish, SharedTier, SharedValue, TierError,
    TierEvent,
};

const TTL: Duration = Duration::from_secs(60);

/// First claim: another process holds the lease over a stale "v1", and its publish is
/// announced before the claim's reply is handled. Later claims: "v2" is fresh.
#[derive(Clone, Default)]
struct RacingPublish {
    claims: Arc<AtomicUsize>,
    events: Arc<Mutex<Option<EventSink<String>>>>,
}

impl SharedTier<String, String> for RacingPublish {
    fn lookup(&self, _: &String) -> Result<Option<SharedValue<String>>, TierError> {
        Err(TierError::new("not used"))
    }
    fn claim(&self, key: &String, _: Duration) -> Result<Claim<String>, TierError> {
        if self.claims.fetch_add(1, Ordering::SeqCst) > 0 {
            let value = "v2".to_string();
            return Ok(Claim::Fresh(SharedValue {
                value,
                age: Duration::ZERO,
                lifetime: TTL,
            }));
        }
        let events = self.events.lock().unwrap().clone().expect("subscribed");
        events(TierEvent::Published(key.clone()));
        Ok(Claim::Busy {
            stale: Some(SharedValue {
                value: "v1".to_string(),
                age: TTL,
                lifetime: TTL,
            }),
            lease_left: Duration::from_secs(30),
        })
    }
    fn publish(
        &self,
        _: &String,
        _: &Lease,
        _: &String,
        _: Duration,
    ) -> Result<Publish, TierError> {
        unreachable!("this process never owns the lease")
    }
    fn release(&self, _: &String, _: &Lease, _: Duration) -> Result<(), TierError> {
        unreachable!("this process never owns the lease")
    }
    fn invalidate(&self, _: &String) -> Result<(), TierError> {
        Ok(())
    }
    fn remove(&self, _: &String) -> Result<(), TierError> {
        Ok(())
    }
    fn subscribe(&self, events: EventSink<String>) {
        *self.events.lock().unwrap() = Some(events);
    }
    fn scoped(self, _: &str) -> Self {
        self // one cache per tier
    }
}

#[test]
fn a_publish_announced_during_the_claim_is_not_lost() {
    // F3: a stale value held while another process's lease runs is served without
    // asking the tier again *until a notification arrives*; one that arrived while the
    // claim was in flight counts too, so the next call asks again and gets v2 (without
    // the fix it would serve v1 for the rest of the 30 s lease).
    let tier = RacingPublish::default();
    let clock = ManualClock::new();
    let cache: Cache<String, String> = Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier.clone())
        .build();
    cache.insert("k".into(), "v0".into());
    clock.advance(TTL);
    assert_eq!(
        cache.get_with("k".into(), || unreachable!("held elsewhere")),
        "v1"
    );
    assert_eq!(
        cache.get_with("k".into(), || unreachable!("fresh in the tier")),
        "v2"
    );
    assert_eq!(tier.claims.load(Ordering::SeqCst), 2);
}
