//! What went wrong between the tier and Redis: each failure is counted by cause, logged
//! through `tracing` at most once per cause and interval (a failing Redis must not
//! flood the logs), and the latest of each cause is kept for [`RedisTier::ping`] and
//! [`RedisTier::failures`](crate::RedisTier::failures).
//!
//! [`RedisTier::ping`]: crate::RedisTier::ping

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::lock;

/// A cause is logged again only after this long; the count keeps every occurrence.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The failures of one cause seen by a tier, from [`RedisTier::failures`].
///
/// [`RedisTier::failures`]: crate::RedisTier::failures
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The Redis error code (`NOPERM`, `NOAUTH`, `WRONGTYPE`, ...), or `timeout`,
    /// `connection`, `subscription refused`, `notification link lost`.
    pub cause: String,
    /// How often it happened since the tier was opened.
    pub count: u64,
    /// Its latest occurrence, described (never with the password).
    pub last: String,
}

/// One cause's record.
struct Record {
    count: u64,
    last: String,
    logged: Option<Instant>,
}

/// The failures of one opened tier, by cause, and the state of its notification link.
#[derive(Default)]
pub(crate) struct Health {
    causes: Mutex<BTreeMap<String, Record>>,
    /// Why Redis refuses this tier's notification subscription, while it does (F6).
    refused_subscription: Mutex<Option<String>>,
}

impl Health {
    /// Counts a failure of `cause` (`"NOPERM"`, `"WRONGTYPE"`, `"unreachable"`, ...) and
    /// logs it unless this cause was logged within the interval.
    pub(crate) fn report(&self, cause: &str, what: &str, detail: &dyn std::fmt::Display) {
        let mut causes = lock(&self.causes);
        let record = causes.entry(cause.to_string()).or_insert(Record {
            count: 0,
            last: String::new(),
            logged: None,
        });
        record.count += 1;
        record.last = format!("{what}: {detail}");
        let due = record.logged.is_none_or(|at| at.elapsed() >= LOG_EVERY);
        if due {
            record.logged = Some(Instant::now());
            let count = record.count;
            drop(causes);
            tracing::warn!(cause, count, %detail, "dogpile-redis: {what}");
        }
    }

    /// Every cause seen so far: how often, and its latest message.
    pub(crate) fn failures(&self) -> Vec<Failure> {
        lock(&self.causes)
            .iter()
            .map(|(cause, r)| Failure {
                cause: cause.clone(),
                count: r.count,
                last: r.last.clone(),
            })
            .collect()
    }

    pub(crate) fn subscription_refused(&self, why: Option<String>) {
        *lock(&self.refused_subscription) = why;
    }

    pub(crate) fn refused_subscription(&self) -> Option<String> {
        lock(&self.refused_subscription).clone()
    }
}

/// Whether Redis refused the credentials or the ACL refused a command: asking again
/// soon will not help until an operator acts.
pub(crate) fn is_refusal(err: &redis::RedisError) -> bool {
    err.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("NOAUTH" | "NOPERM" | "WRONGPASS"))
}

/// The cause of a Redis error, for counting: its error code (`NOPERM`, `WRONGTYPE`,
/// ...), or its kind.
pub(crate) fn cause_of(err: &redis::RedisError) -> String {
    if err.kind() == redis::ErrorKind::AuthenticationFailed {
        return "authentication failed".into();
    }
    if let Some(code) = err.code() {
        return code.to_string();
    }
    if err.is_timeout() {
        "timeout".into()
    } else if err.is_io_error() || err.is_connection_dropped() {
        "connection".into()
    } else {
        format!("{:?}", err.kind())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts the events logged while it is the thread's subscriber.
    struct Count(Arc<AtomicUsize>);

    impl tracing::Subscriber for Count {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, _: &tracing::Event<'_>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[test]
    fn each_cause_is_counted_every_time_and_logged_once_per_interval() {
        let logged = Arc::new(AtomicUsize::new(0));
        let health = Health::default();
        tracing::subscriber::with_default(Count(logged.clone()), || {
            for n in 0..5 {
                health.report("WRONGTYPE", "a script failed", &n);
            }
            health.report("NOPERM", "refused", &"no");
        });
        assert_eq!(logged.load(Ordering::SeqCst), 2, "one line per cause");
        let failures = health.failures();
        assert_eq!(failures.len(), 2);
        let wrongtype = failures.iter().find(|f| f.cause == "WRONGTYPE").unwrap();
        assert_eq!(wrongtype.count, 5);
        assert_eq!(wrongtype.last, "a script failed: 4");
    }
}
