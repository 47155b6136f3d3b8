//! The ways to reach Redis beyond one plain URL ([`RedisTier::open`]): a Redis Cluster,
//! a private certificate authority for `rediss://`; and a startup check of the URL, its
//! credentials and TLS ([`RedisTier::ping`]).

use crate::tier::RedisTier;
use crate::Error;
#[cfg(any(feature = "cluster", feature = "tls"))]
use crate::{
    conn::Target,
    tier::{parse_url, redact, DEFAULT_TIMEOUT},
};

impl RedisTier {
    /// Opens the tier on a Redis Cluster, given the URLs of some of its nodes (one is
    /// enough; give several so that the tier can start, and keep its notification link,
    /// while one is down). Does not connect: the cluster need not be up (F7).
    ///
    /// The two Redis keys of one slot share a hash tag, so every script runs on the one
    /// node that owns the slot, and notifications reach every node (pub/sub is broadcast
    /// in a cluster). A call that finds a node gone or its slot moved fails (the cache
    /// then follows its local rules, F7) and the next connection reads the cluster's
    /// slot map again; a node that cannot be reached backs off alone, so keys of the
    /// other nodes stay shared. While a node is frozen (it accepts connections but never
    /// answers), a call that needs a new connection also waits one deadline for it: the
    /// cluster client connects to every node. All nodes share the URLs' credentials and scheme
    /// (`rediss://` for TLS, with the public root certificates).
    ///
    /// ```
    /// use dogpile_redis::RedisTier;
    ///
    /// let tier = RedisTier::open_cluster(&[
    ///     "redis://app:secret@10.0.0.1:7000",
    ///     "redis://app:secret@10.0.0.2:7000",
    /// ])?
    /// .namespace("pages");
    /// # let _ = tier;
    /// assert!(RedisTier::open_cluster(&[]).is_err());
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    #[cfg(feature = "cluster")]
    pub fn open_cluster(nodes: &[&str]) -> Result<RedisTier, Error> {
        if nodes.is_empty() {
            return Err(Error::InvalidUrl(
                "a cluster needs at least one node URL".into(),
            ));
        }
        let infos = nodes
            .iter()
            .map(|url| parse_url(url))
            .collect::<Result<Vec<_>, _>>()?;
        let hide_passwords = |err: redis::RedisError| {
            let message = nodes
                .iter()
                .fold(err.to_string(), |message, url| redact(&message, url));
            Error::InvalidUrl(message)
        };
        // No retries inside the client: one call is one round trip under the deadline
        // (F7); a moved slot or a lost node is the next call's business.
        let cluster = redis::cluster::ClusterClient::builder(infos.clone())
            .retries(0)
            .build()
            .map_err(hide_passwords)?;
        let nodes = infos
            .into_iter()
            .map(redis::Client::open)
            .collect::<Result<Vec<_>, _>>()
            .map_err(hide_passwords)?;
        Ok(RedisTier::on(
            Target::Cluster { cluster, nodes },
            DEFAULT_TIMEOUT,
        ))
    }

    /// Opens the tier on a `rediss://` URL whose server certificate is signed by the
    /// certificate authority `root_ca_pem` (PEM, one or more certificates), trusted
    /// instead of the usual public roots: for a private CA. Does not connect (F7).
    ///
    /// A server whose certificate this CA did not sign is never talked to: its calls
    /// fail (the cache follows its local rules, F7), and [`ping`](Self::ping) says why.
    ///
    /// ```
    /// use dogpile_redis::RedisTier;
    ///
    /// # let ca = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/example-ca.pem"));
    /// // let ca = std::fs::read("/etc/redis/ca.pem")?;
    /// let tier = RedisTier::open_with_root_ca("rediss://app:secret@cache.internal:6380/0", ca)?;
    /// # let _ = tier;
    /// let err = RedisTier::open_with_root_ca("redis://cache.internal/", ca).unwrap_err();
    /// assert!(err.to_string().contains("rediss://"), "{err}");
    /// let err = RedisTier::open_with_root_ca("rediss://cache.internal/", "not PEM").unwrap_err();
    /// assert!(matches!(err, dogpile_redis::Error::InvalidRootCa(_)), "{err}");
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn open_with_root_ca(url: &str, root_ca_pem: impl AsRef<[u8]>) -> Result<RedisTier, Error> {
        let info = parse_url(url)?;
        if !url.starts_with("rediss://") {
            return Err(Error::InvalidUrl(
                "a root certificate authority needs a rediss:// URL".into(),
            ));
        }
        let pem = root_ca_pem.as_ref();
        if !pem
            .windows(b"-----BEGIN CERTIFICATE-----".len())
            .any(|w| w == b"-----BEGIN CERTIFICATE-----")
        {
            return Err(Error::InvalidRootCa("no PEM certificate in it".into()));
        }
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.to_vec()),
        };
        // The URL is already checked: what can fail here is reading the certificates.
        let client = redis::Client::build_with_tls(info, certificates)
            .map_err(|err| Error::InvalidRootCa(redact(&err.to_string(), url)))?;
        Ok(RedisTier::on(Target::Server(client), DEFAULT_TIMEOUT))
    }

    /// Two round trips to Redis, each under the deadline: a `PING`, and one of the tier's
    /// scripts on a slot of its own. Checks the URL, its credentials, TLS and the ACL
    /// (scripts, keys), e.g. at startup. The tier works without it: while
    /// Redis cannot be reached the cache follows its local rules (F7). An error names
    /// the cause (refused, wrong password, untrusted certificate...); right after a
    /// failure it is [`Error::Unavailable`] for the short back-off.
    ///
    /// ```no_run
    /// let tier = dogpile_redis::RedisTier::open("redis://app:secret@127.0.0.1:6379/")?;
    /// if let Err(err) = tier.ping() {
    ///     eprintln!("sharing is off until Redis answers: {err}");
    /// }
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    ///
    /// A tier whose notification subscription Redis refuses (an ACL user without the
    /// channel) answers [`Error::Notifications`]: it shares values, but invalidations
    /// made elsewhere do not reach it (F6).
    pub fn ping(&self) -> Result<(), Error> {
        self.shared
            .pool
            .run(|con| redis::cmd("PING").query::<String>(con))?;
        // A script on a slot of its own, in this namespace: checks the ACL allows the
        // tier's scripts and keys (`+@scripting`, `~dogpile:*`).
        self.protocol
            .lookup(&crate::codec::fingerprint("ping", b""))?;
        match self.shared.pool.health.refused_subscription() {
            Some(why) => Err(Error::Notifications(why)),
            None => Ok(()),
        }
    }

    /// The failures this tier (and its clones) met since it was opened, by cause: each
    /// is also logged through `tracing`, once per cause and ten seconds. A tier that
    /// works has none.
    ///
    /// ```
    /// let tier = dogpile_redis::RedisTier::open("redis://127.0.0.1:1/")?;
    /// assert!(tier.failures().is_empty()); // nothing tried yet
    /// # Ok::<(), dogpile_redis::Error>(())
    /// ```
    pub fn failures(&self) -> Vec<crate::Failure> {
        self.shared.pool.health.failures()
    }
}
