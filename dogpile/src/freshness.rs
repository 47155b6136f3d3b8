//! The freshness model as pure decisions: what a call does with a key, given the value's
//! expiry, the cache's windows, the key's failures and the time. No locks, no clock, no
//! value: the slot driver, the hit path and a batch each feed these functions what they
//! read, so one set of rules (R2, R3, R5, R6, R11 and the windows around them) decides
//! for all of them, and the tests below drive every case without threads.
//!
//! Times are clock readings in nanoseconds. A value's *expiry* is the instant its
//! lifetime ends: when its creation finished plus its lifetime (R6), `ttl` or what
//! `ttl_with` says for it.

/// `ttl_with`'s function: each value's own lifetime, in nanoseconds (R6).
pub(crate) type Lifetime<K, V> = std::sync::Arc<dyn Fn(&K, &V) -> u64 + Send + Sync>;

/// How values age and how failures pause a key: the cache's settings, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// The default lifetime (R2, R3). Never zero.
    pub(crate) ttl: u64,
    /// R11: how long past its lifetime a value may be served while one caller refreshes
    /// it. `None`: until a refresh succeeds. `Some(0)`: never; callers wait as for a
    /// cold key.
    pub(crate) stale_while_revalidate: Option<u64>,
    /// R5: how long past its lifetime a value is served instead of a failed refresh's
    /// error (and during a back-off). `None`: the error goes to the refresh's caller.
    pub(crate) stale_if_error: Option<u64>,
    /// With less than this left of its lifetime, the next caller claims an early
    /// refresh, once per lifetime. Zero: no early refresh.
    pub(crate) refresh_ahead: u64,
    /// After failures in a row, no new attempt for a while.
    pub(crate) backoff: Option<Backoff>,
    /// A caller waiting for another's creation gives up after this and creates itself.
    pub(crate) wait_at_most: Option<u64>,
}

impl Policy {
    /// The policy of a plain `ttl`: no windows, no early refresh, no back-off.
    pub(crate) fn ttl(ttl: u64) -> Self {
        Policy {
            ttl,
            stale_while_revalidate: None,
            stale_if_error: None,
            refresh_ahead: 0,
            backoff: None,
            wait_at_most: None,
        }
    }
}

/// What a value is at a given instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// Within its lifetime, with more than `refresh_ahead` left: served at once (R2).
    Fresh,
    /// Within its lifetime, with less than `refresh_ahead` left: served, and the next
    /// caller claims an early refresh.
    Due,
    /// Past its lifetime (or invalidated, R7), within `stale_while_revalidate`: served
    /// while one caller refreshes it (R3).
    Stale,
    /// Past its lifetime + `stale_while_revalidate`: treated as no value (R11).
    Expired,
}

impl Policy {
    /// R2, R3, R7, R11 and the early-refresh window. An expiry of `u64::MAX` never
    /// comes.
    #[inline]
    pub(crate) fn classify(&self, expires: u64, invalidated: bool, now: u64) -> Freshness {
        let never = expires == u64::MAX;
        if (never || now < expires) && !invalidated {
            return if !never && expires - now < self.refresh_ahead {
                Freshness::Due
            } else {
                Freshness::Fresh
            };
        }
        match self.stale_while_revalidate {
            Some(window) if now >= expires.saturating_add(window) => Freshness::Expired,
            _ => Freshness::Stale,
        }
    }

    /// R5: whether a value that expired at `expires` may stand in for a failure at `now`.
    pub(crate) fn serves_on_error(&self, expires: u64, now: u64) -> bool {
        self.stale_if_error
            .is_some_and(|window| now < expires.saturating_add(window))
    }
}

/// How far past its lifetime a value is at `now`; zero while it is within it.
pub(crate) fn past_lifetime(expires: u64, now: u64) -> u64 {
    now.saturating_sub(expires)
}

/// The back-off after failures in a row: the n-th failure pauses the key for
/// `min(base * 2^(n-1), cap)`, raised by at most a quarter so that keys (and processes)
/// that failed together do not retry together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) base: u64,
    pub(crate) cap: u64,
}

impl Backoff {
    /// The pause after `failures` failures in a row (at least one); `jitter` in `[0, 1]`
    /// picks where in the upward quarter it lands.
    pub(crate) fn pause(&self, failures: u32, jitter: f64) -> u64 {
        let doublings = failures.saturating_sub(1).min(63);
        let pause = self
            .base
            .checked_mul(1u64 << doublings)
            .map_or(self.cap, |p| p.min(self.cap));
        let spread = (pause / 4) as f64 * jitter.clamp(0.0, 1.0);
        pause.saturating_add(spread as u64)
    }
}

/// A key's failures in a row, and until when it is not tried again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Failures {
    pub(crate) in_a_row: u32,
    /// No attempt before this instant.
    pub(crate) retry_at: u64,
}

impl Failures {
    /// Whether the key is paused at `now`.
    pub(crate) fn backing_off(&self, now: u64) -> bool {
        self.in_a_row > 0 && now < self.retry_at
    }

    /// One more failure at `now`: the key pauses (with a back-off), and the pause starts.
    pub(crate) fn failed(&mut self, backoff: Option<Backoff>, now: u64, jitter: f64) {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.retry_at = backoff.map_or(now, |b| now.saturating_add(b.pause(self.in_a_row, jitter)));
    }
}

/// What a call knows when it decides: the value it found (its expiry and whether it was
/// invalidated), and the key's state under its claim lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Look {
    pub(crate) now: u64,
    /// `(expires, invalidated)` of the value found, if any.
    pub(crate) value: Option<(u64, bool)>,
    /// Another caller's creation is in flight.
    pub(crate) busy: bool,
    /// The expiry of the value whose early refresh was already claimed, if any.
    pub(crate) early_claimed: Option<u64>,
    pub(crate) failures: Failures,
}

/// What a call does with its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Serve the value found: fresh (R2), due but refreshing or refreshed already,
    /// or stale while someone refreshes it (R3).
    Serve,
    /// Serve the value found, which is past its lifetime, because the key is backing
    /// off after failures and the value is within `stale_if_error` (or the stale window).
    ServeBackingOff,
    /// Claim an early refresh of a value that is still within its lifetime.
    ClaimEarly,
    /// Claim the refresh of a stale value (R3).
    ClaimStale,
    /// No servable value and nobody creating: claim the creation (R1, R11).
    ClaimCold,
    /// No servable value and someone else is creating: wait for it (R1).
    Wait,
    /// No servable value and the key is backing off: the last failure is the answer.
    Failed,
}

/// The rules, one decision per look.
pub(crate) fn decide(policy: &Policy, look: &Look) -> Decision {
    let freshness = look
        .value
        .map(|(expires, invalidated)| (expires, policy.classify(expires, invalidated, look.now)));
    let backing_off = look.failures.backing_off(look.now);
    match freshness {
        Some((_, Freshness::Fresh)) => Decision::Serve,
        Some((expires, Freshness::Due)) => {
            let claimed = look.early_claimed == Some(expires);
            if look.busy || claimed || backing_off {
                Decision::Serve
            } else {
                Decision::ClaimEarly
            }
        }
        Some((_, Freshness::Stale)) if backing_off => Decision::ServeBackingOff,
        Some((_, Freshness::Stale)) if look.busy => Decision::Serve,
        Some((_, Freshness::Stale)) => Decision::ClaimStale,
        Some((expires, Freshness::Expired)) if backing_off => {
            if policy.serves_on_error(expires, look.now) {
                Decision::ServeBackingOff
            } else {
                Decision::Failed
            }
        }
        None if backing_off => Decision::Failed,
        _ if look.busy => Decision::Wait,
        _ => Decision::ClaimCold,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn policy() -> Policy {
        Policy {
            ttl: 10 * S,
            stale_while_revalidate: Some(5 * S),
            stale_if_error: Some(60 * S),
            refresh_ahead: 2 * S,
            backoff: Some(Backoff {
                base: S / 10,
                cap: 5 * S,
            }),
            wait_at_most: None,
        }
    }

    fn look(now: u64, expires: Option<u64>) -> Look {
        Look {
            now,
            value: expires.map(|e| (e, false)),
            busy: false,
            early_claimed: None,
            failures: Failures::default(),
        }
    }

    #[test]
    fn classify_follows_lifetime_windows_and_invalidation() {
        let p = policy();
        assert_eq!(p.classify(100 * S, false, 90 * S), Freshness::Fresh);
        assert_eq!(p.classify(100 * S, false, 98 * S + 1), Freshness::Due);
        assert_eq!(p.classify(100 * S, false, 100 * S), Freshness::Stale);
        assert_eq!(p.classify(100 * S, true, 50 * S), Freshness::Stale);
        assert_eq!(p.classify(100 * S, false, 105 * S - 1), Freshness::Stale);
        assert_eq!(p.classify(100 * S, false, 105 * S), Freshness::Expired);
        let unbounded = Policy::ttl(10 * S);
        assert_eq!(unbounded.classify(S, false, u64::MAX), Freshness::Stale);
        let zero = Policy {
            stale_while_revalidate: Some(0),
            ..unbounded
        };
        assert_eq!(zero.classify(100 * S, false, 100 * S), Freshness::Expired);
        assert_eq!(zero.classify(100 * S, false, 100 * S - 1), Freshness::Fresh);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_jitters_upward_by_a_quarter_at_most() {
        let b = Backoff {
            base: 100,
            cap: 5000,
        };
        let pauses: Vec<u64> = (1..=8).map(|n| b.pause(n, 0.0)).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(b.pause(1, 1.0), 125);
        assert_eq!(b.pause(40, 1.0), 6250);
        assert_eq!(b.pause(u32::MAX, 0.5), 5625);
        for n in 1..70 {
            for j in [0.0, 0.3, 0.99, 1.0] {
                let p = b.pause(n, j);
                let plain = b.pause(n, 0.0);
                assert!(
                    p >= plain && p <= plain + plain / 4,
                    "n {n} jitter {j}: {p}"
                );
            }
        }
    }

    #[test]
    fn fresh_serves_due_claims_early_once_per_lifetime() {
        let p = policy();
        let mut l = look(90 * S, Some(100 * S));
        assert_eq!(decide(&p, &l), Decision::Serve);
        l.now = 99 * S;
        assert_eq!(decide(&p, &l), Decision::ClaimEarly);
        l.early_claimed = Some(100 * S);
        assert_eq!(
            decide(&p, &l),
            Decision::Serve,
            "one early refresh per lifetime"
        );
        l.early_claimed = Some(80 * S);
        assert_eq!(
            decide(&p, &l),
            Decision::ClaimEarly,
            "an older value's claim"
        );
        l.busy = true;
        assert_eq!(decide(&p, &l), Decision::Serve);
    }

    #[test]
    fn stale_claims_or_serves_while_busy_and_expired_is_cold() {
        let p = policy();
        let mut l = look(101 * S, Some(100 * S));
        assert_eq!(decide(&p, &l), Decision::ClaimStale);
        l.busy = true;
        assert_eq!(decide(&p, &l), Decision::Serve);
        l.now = 106 * S;
        assert_eq!(decide(&p, &l), Decision::Wait);
        l.busy = false;
        assert_eq!(decide(&p, &l), Decision::ClaimCold);
        assert_eq!(decide(&p, &look(0, None)), Decision::ClaimCold);
    }

    #[test]
    fn backing_off_serves_stale_within_stale_if_error_and_fails_cold_keys() {
        let p = policy();
        let mut failures = Failures::default();
        failures.failed(p.backoff, 101 * S, 0.0);
        assert_eq!(failures.retry_at, 101 * S + S / 10);
        let mut l = look(101 * S, Some(100 * S));
        l.failures = failures;
        assert_eq!(decide(&p, &l), Decision::ServeBackingOff);
        l.value = None;
        assert_eq!(decide(&p, &l), Decision::Failed);
        l.value = Some((10 * S, false)); // expired, and past stale_if_error
        assert_eq!(decide(&p, &l), Decision::Failed);
        l.value = Some((60 * S, false)); // expired, within stale_if_error
        assert_eq!(decide(&p, &l), Decision::ServeBackingOff);
        l.now = failures.retry_at;
        l.value = Some((100 * S, false));
        assert_eq!(decide(&p, &l), Decision::ClaimStale, "the pause is over");
        failures.failed(p.backoff, l.now, 0.0);
        assert_eq!(failures.in_a_row, 2);
        assert_eq!(failures.retry_at, l.now + S / 5);
    }

    #[test]
    fn every_look_gets_exactly_the_decision_its_class_allows() {
        // Exhaustive over a small grid: no decision serves a value past
        // `stale_while_revalidate` unless backing off within `stale_if_error`, and no
        // claim is made while busy or backing off.
        let p = policy();
        for now in (0..130).map(|t| t * S / 2) {
            for value in [None, Some((50 * S, false)), Some((50 * S, true))] {
                for busy in [false, true] {
                    for in_a_row in [0, 3] {
                        let failures = Failures {
                            in_a_row,
                            retry_at: 40 * S,
                        };
                        let l = Look {
                            now,
                            value,
                            busy,
                            early_claimed: None,
                            failures,
                        };
                        let d = decide(&p, &l);
                        let claims = matches!(
                            d,
                            Decision::ClaimEarly | Decision::ClaimStale | Decision::ClaimCold
                        );
                        assert!(
                            !(claims && (busy || failures.backing_off(now))),
                            "{l:?}: {d:?}"
                        );
                        if let (Decision::Serve, Some((expires, _))) = (d, value) {
                            assert!(now < expires + 5 * S, "{l:?}: served past the window");
                        }
                        if d == Decision::ServeBackingOff {
                            let (expires, _) = value.unwrap();
                            assert!(p.serves_on_error(expires, now) || now < expires + 5 * S);
                        }
                    }
                }
            }
        }
    }
}
