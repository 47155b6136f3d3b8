//! The ways to reach Redis beyond one plain URL ([`RedisTier::open`]): a Redis Cluster.

use crate::tier::RedisTier;
#[cfg(feature = "cluster")]
use crate::{
    conn::Target,
    tier::{parse_url, redact, DEFAULT_TIMEOUT},
    Error,
};

impl RedisTier {
    /// Opens the tier on a Redis Cluster, given the URLs of some of its nodes (one is
    /// enough; give several so that the tier can start, and keep its notification link,
    /// while one is down). Does not connect: the cluster need not be up (F7).
    ///
    /// The two Redis keys of one slot share a hash tag, so every script runs on the one
    /// node that owns the slot, and notifications reach every node (pub/sub is broadcast
    /// in a cluster). A call that finds a node gone or its slot moved fails (the cache
    /// then follows its local rules, F7) and the next call reads the cluster's slot map
    /// again. All nodes share the URLs' credentials and scheme (`rediss://` for TLS).
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
}
