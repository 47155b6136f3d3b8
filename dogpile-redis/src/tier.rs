//! `RedisTier`: configuration, the shared state of its clones, and the calls of one slot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::{ConnectionInfo, IntoConnectionInfo};

use crate::conn::{Pool, Target};
use crate::events::Listeners;
use crate::protocol::Protocol;
use crate::renew::Renewer;
use crate::Error;

/// The default claim lease (F5): a dead or frozen owner blocks a refresh this long.
pub(crate) const DEFAULT_LEASE: Duration = Duration::from_secs(5);
/// The default deadline of one Redis round trip (F7).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// The default largest value read back from Redis.
pub(crate) const DEFAULT_MAX_VALUE: usize = 16 << 20;
/// After a failure to reach Redis, calls fail at once for this long (F7: sharing
/// resumes well within a second of Redis coming back).
const BACKOFF: Duration = Duration::from_millis(250);

/// The fleet tier on Redis: shares values, their creation time and the refresh claim
/// between the processes of a fleet. See the crate docs for the rules (F1–F8).
///
/// Cheap to clone: clones share connections, lease renewal and notification threads.
///
/// ```
/// use dogpile_redis::RedisTier;
/// use std::time::Duration;
///
/// // No server needed to build it (F7): the URL is only parsed.
/// let tier = RedisTier::open("redis://app:secret@127.0.0.1:6379/2")?
///     .namespace("pages")
///     .lease(Duration::from_secs(10));
/// let same_connections = tier.clone();
/// # drop(same_connections);
/// # Ok::<(), dogpile_redis::Error>(())
/// ```
#[derive(Clone)]
pub struct RedisTier {
    pub(crate) shared: Arc<Shared>,
    /// The calls on Redis, with this clone's namespace, lease and size limit.
    pub(crate) protocol: Protocol,
}

/// What the clones of one opened tier share.
pub(crate) struct Shared {
    pub(crate) pool: Arc<Pool>,
    /// Started on the first claim.
    pub(crate) renewer: OnceLock<Arc<Renewer>>,
    pub(crate) listeners: Listeners,
    tokens: AtomicU64,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection info holds the password: never print it.
        f.debug_struct("RedisTier")
            .field("namespace", &self.protocol.namespace)
            .field("lease", &self.protocol.lease)
            .finish_non_exhaustive()
    }
}

impl RedisTier {
    /// Parses `url` (`redis://[user:pass@]host[:port][/db]`, `rediss://...` for TLS,
    /// `redis+unix:///path`). Does not connect: the server need not be up (F7).
    ///
    /// ```
    /// use dogpile_redis::RedisTier;
    ///
    /// assert!(RedisTier::open("redis://127.0.0.1:6379/0").is_ok());
    /// let err = RedisTier::open("redis://:hunter2@127.0.0.1:notaport").unwrap_err();
    /// assert!(!err.to_string().contains("hunter2"), "{err}");
    /// ```
    pub fn open(url: &str) -> Result<RedisTier, Error> {
        RedisTier::open_with_timeout(url, DEFAULT_TIMEOUT)
    }

    fn open_with_timeout(url: &str, timeout: Duration) -> Result<RedisTier, Error> {
        let client = redis::Client::open(parse_url(url)?)
            .map_err(|err| Error::InvalidUrl(redact(&err.to_string(), url)))?;
        Ok(RedisTier::on(Target::Server(client), timeout))
    }

    /// A tier with default settings on `target`, with fresh connections.
    pub(crate) fn on(target: Target, timeout: Duration) -> RedisTier {
        let pool = Arc::new(Pool::new(target, timeout, BACKOFF));
        RedisTier {
            shared: Arc::new(Shared {
                pool: pool.clone(),
                renewer: OnceLock::new(),
                listeners: Listeners::default(),
                tokens: AtomicU64::new(0),
            }),
            protocol: Protocol {
                pool,
                namespace: "default".into(),
                lease: DEFAULT_LEASE,
                max_value: DEFAULT_MAX_VALUE,
                epochs: Arc::default(),
            },
        }
    }

    /// The prefix of every Redis key and of the notification channel: give each cache
    /// its own. Default `"default"`. A `#[dogpile(shared = ..)]` fn extends it with its
    /// path ([`scoped`](RedisTier::scoped)). A `:` in `ns` is kept apart from the one
    /// that joins a scope (it is written `%3A` in Redis), so that no namespace can stand
    /// for another namespace's scope.
    ///
    /// # Panics
    ///
    /// If `ns` holds `{` or `}`: the namespace is inside each slot's Redis Cluster hash
    /// tag, `{ns:fingerprint}`, which a brace would cut short (the keys of one slot could
    /// then land on different nodes).
    ///
    /// ```
    /// let users = dogpile_redis::RedisTier::open("redis://127.0.0.1/")?.namespace("users");
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        assert!(
            !ns.contains(['{', '}']),
            "RedisTier::namespace: {ns:?} holds a brace, which would break the Redis Cluster hash tag"
        );
        // R4: a `:` in the namespace is escaped, so that no namespace reads as another
        // namespace with a scope (`"shop:app::x"` is not `"shop"` scoped by `"app::x"`).
        self.protocol.namespace = ns.replace('%', "%25").replace(':', "%3A").into();
        self
    }

    /// This tier with its namespace extended by `scope`: `"{namespace}:{scope}"`, so
    /// `"default:app::pages::render"` for the fn `app::pages::render` on a tier without
    /// a namespace, `"shop:app::pages::render"` after `.namespace("shop")`. The
    /// `#[dogpile(shared = ..)]` attribute calls it with the fn's path (this is
    /// [`SharedTier::scoped`](dogpile::SharedTier::scoped)), so that the fns sharing a
    /// tier keep their keys apart. The whole namespace stays inside each slot's Cluster
    /// hash tag. Clones keep sharing connections.
    ///
    /// # Panics
    ///
    /// If `scope` holds `{` or `}` (see [`namespace`](RedisTier::namespace)).
    ///
    /// ```
    /// let tier = dogpile_redis::RedisTier::open("redis://127.0.0.1/")?.namespace("shop");
    /// let render = tier.clone().scoped("app::pages::render");
    /// assert!(format!("{render:?}").contains("\"shop:app::pages::render\""));
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn scoped(mut self, scope: &str) -> Self {
        assert!(
            !scope.contains(['{', '}']),
            "RedisTier::scoped: {scope:?} holds a brace, which would break the Redis Cluster hash tag"
        );
        self.protocol.namespace = format!("{}:{scope}", self.protocol.namespace).into();
        self
    }

    /// The claim lease (F5), renewed while the creator runs; the longest a dead or
    /// frozen owner can hold a refresh up. Default 5 s. Panics if under 30 ms, too short
    /// to renew within a round trip's deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// let tier = dogpile_redis::RedisTier::open("redis://127.0.0.1/")?.lease(Duration::from_secs(2));
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        assert!(
            lease >= Duration::from_millis(30),
            "RedisTier::lease: {lease:?} is too short (at least 30ms)"
        );
        self.protocol.lease = lease;
        self
    }

    /// The deadline of each Redis round trip and connect (F7). Default 250 ms. Applies
    /// to every clone that shares this tier's connections, so set it right after `open`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let tier = dogpile_redis::RedisTier::open("redis://127.0.0.1/")?.timeout(Duration::from_millis(50));
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn timeout(self, timeout: Duration) -> Self {
        let target = self.shared.pool.target().clone();
        let on = RedisTier::on(target, timeout);
        RedisTier {
            protocol: Protocol {
                pool: on.protocol.pool,
                epochs: on.protocol.epochs,
                ..self.protocol
            },
            shared: on.shared,
        }
    }

    /// The largest value read back from Redis; a larger one is a miss, never
    /// transferred. Default 16 MiB.
    ///
    /// ```
    /// let tier = dogpile_redis::RedisTier::open("redis://127.0.0.1/")?.max_value_bytes(1 << 20);
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn max_value_bytes(mut self, limit: usize) -> Self {
        self.protocol.max_value = limit;
        self
    }

    /// The lease renewer of this tier's connections, started on first use.
    pub(crate) fn renewer(&self) -> &Renewer {
        self.shared.renewer.get_or_init(Renewer::start)
    }

    /// A token no other claim in the fleet uses: process, time, counter.
    pub(crate) fn new_token(&self) -> String {
        let n = self.shared.tokens.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let here = Arc::as_ptr(&self.shared) as usize;
        format!("{:x}-{here:x}-{nanos:x}-{n:x}", std::process::id())
    }
}

/// Checks and parses a Redis URL (`redis://`, `rediss://`, `redis+unix://`); an error
/// never shows the password.
pub(crate) fn parse_url(url: &str) -> Result<ConnectionInfo, Error> {
    let scheme_ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    if !scheme_ok {
        return Err(Error::InvalidUrl(
            "expected redis://, rediss:// or redis+unix://".into(),
        ));
    }
    url.into_connection_info()
        .map_err(|err| Error::InvalidUrl(redact(&err.to_string(), url)))
}

/// Removes the URL's password from an error message that may quote the URL.
pub(crate) fn redact(message: &str, url: &str) -> String {
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(userinfo, _)| userinfo.split_once(':'))
        .map(|(_, pass)| pass)
        .filter(|pass| !pass.is_empty());
    match password {
        Some(pass) => message.replace(pass, "***"),
        None => message.to_string(),
    }
}
