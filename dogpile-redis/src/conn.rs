//! Connections with a deadline on every round trip (F7), and a short back-off after a
//! failure so that callers do not each wait out a deadline while Redis is down. One
//! server or a Redis Cluster: the tier's calls see one `ConnectionLike` either way.

// Without the `cluster` feature the target has one kind: its matches have one arm.
#![cfg_attr(
    not(feature = "cluster"),
    allow(clippy::infallible_destructuring_match)
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike};

use crate::health::{cause_of, is_refusal, Health};
use crate::sync::lock;
use crate::Error;

/// Where the tier's Redis is.
#[derive(Clone)]
pub(crate) enum Target {
    /// One server (or a proxy in front of several).
    Server(Client),
    /// A Redis Cluster: `cluster` routes each script to the node of its keys' hash tag;
    /// `nodes` are the seed nodes, one of which carries the notification link.
    #[cfg(feature = "cluster")]
    Cluster {
        cluster: redis::cluster::ClusterClient,
        nodes: Vec<Client>,
    },
}

/// A pooled connection: to the server, or to the whole cluster.
enum Con {
    Server(Connection),
    #[cfg(feature = "cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Con {
    fn as_dyn(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Con::Server(con) => con,
            #[cfg(feature = "cluster")]
            Con::Cluster(con) => con.as_mut(),
        }
    }
}

/// Idle connections kept for reuse: as many as callers of one process run at once in
/// practice, so that a busy process reuses its connections instead of opening one per
/// call (each costs Redis a little memory while idle). More are opened under load and
/// dropped after.
const MAX_IDLE: usize = 256;

pub(crate) struct Pool {
    target: Target,
    idle: Mutex<Vec<Con>>,
    /// Deadline of one connect (with its handshake) and of one round trip.
    deadline: Duration,
    /// After a failure to reach Redis, calls fail at once for this long.
    backoff: Duration,
    /// Nanoseconds since `epoch` until which Redis counts as down; 0 when it is up.
    down_until: AtomicU64,
    epoch: Instant,
    /// On a cluster: the slot map and the nodes backing off on their own.
    #[cfg(feature = "cluster")]
    nodes: crate::slots::Nodes,
    /// The failures seen, by cause.
    pub(crate) health: Health,
}

impl Pool {
    pub(crate) fn new(target: Target, deadline: Duration, backoff: Duration) -> Self {
        Pool {
            target,
            idle: Mutex::new(Vec::new()),
            deadline,
            backoff,
            down_until: AtomicU64::new(0),
            epoch: Instant::now(),
            #[cfg(feature = "cluster")]
            nodes: crate::slots::Nodes::default(),
            health: Health::default(),
        }
    }

    pub(crate) fn target(&self) -> &Target {
        &self.target
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn backoff_until(&self) -> u64 {
        let until = self
            .now_nanos()
            .saturating_add(self.backoff.as_nanos() as u64);
        until.max(1)
    }

    fn mark_down(&self) {
        self.down_until
            .store(self.backoff_until(), Ordering::Relaxed);
    }

    /// Opens a connection whose connect, handshake and every later read and write
    /// are bounded by the deadline.
    fn connect(&self) -> Result<Con, redis::RedisError> {
        match &self.target {
            Target::Server(client) => self.connect_to(client).map(Con::Server),
            #[cfg(feature = "cluster")]
            Target::Cluster { cluster, nodes } => {
                // Connects to the nodes and reads the slot map, each step bounded; the
                // client was built without retries, so one call is one round trip.
                let config = redis::cluster::ClusterConfig::new()
                    .set_connection_timeout(self.deadline)
                    .set_response_timeout(self.deadline);
                let cluster = cluster.clone();
                let con =
                    self.within_deadline(move || cluster.get_connection_with_config(config))?;
                con.set_read_timeout(Some(self.deadline))?;
                con.set_write_timeout(Some(self.deadline))?;
                // A new connection follows the cluster's slot map: so does the back-off,
                // when that map may have changed. Read on a connection of its own: one
                // that timed out mid-answer is dropped, never left inside the cluster's.
                for seed in nodes.iter().filter(|_| self.nodes.is_stale()) {
                    let read = self
                        .connect_to(seed)
                        .map(|mut plain| self.nodes.refresh(&mut plain));
                    if matches!(read, Ok(true)) {
                        break;
                    }
                }
                Ok(Con::Cluster(Box::new(con)))
            }
        }
    }

    fn connect_to(&self, client: &Client) -> Result<Connection, redis::RedisError> {
        let (client, deadline) = (client.clone(), self.deadline);
        let con = self.within_deadline(move || client.get_connection_with_timeout(deadline))?;
        con.set_read_timeout(Some(self.deadline))?;
        con.set_write_timeout(Some(self.deadline))?;
        Ok(con)
    }

    /// Runs `connect` (TCP, TLS, AUTH, SELECT, the client name: each step with a
    /// deadline of its own) on a thread of its own, and gives up once the deadline has
    /// passed for the whole: a frozen server must not cost one deadline per step (F7).
    /// A connect given up on ends by its own steps' deadlines, its connection dropped.
    fn within_deadline<C: Send + 'static>(
        &self,
        connect: impl FnOnce() -> redis::RedisResult<C> + Send + 'static,
    ) -> redis::RedisResult<C> {
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("dogpile-redis-connect".into())
            .spawn(move || {
                let _ = tx.send(connect());
            })?;
        rx.recv_timeout(self.deadline).unwrap_or_else(|_| {
            Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect deadline passed").into())
        })
    }

    /// A plain connection for the notification link (F6), to the server or, on a
    /// cluster, to seed node `attempt` modulo their number: pub/sub messages reach every
    /// node of a cluster, so any one will do, and a link that failed tries the next.
    pub(crate) fn connect_listener(&self, attempt: usize) -> Result<Connection, redis::RedisError> {
        let client = match &self.target {
            Target::Server(client) => client,
            #[cfg(feature = "cluster")]
            Target::Cluster { nodes, .. } => &nodes[attempt % nodes.len()],
        };
        let _ = attempt; // one server: always the same
        self.connect_to(client)
    }

    /// The keys of a batch grouped by the node they live on, as positions in `keys`,
    /// each group in the order of `keys`: one group on one server; on a cluster one per
    /// node that owns some of their hash slots (one per hash slot while the slot map is
    /// unknown), so that each group's script runs on one node.
    pub(crate) fn groups(&self, keys: &[String]) -> Vec<Vec<usize>> {
        match &self.target {
            Target::Server(_) => vec![(0..keys.len()).collect()],
            #[cfg(feature = "cluster")]
            Target::Cluster { .. } => {
                let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
                for (at, key) in keys.iter().enumerate() {
                    let slot = crate::slots::hash_slot(key.as_bytes());
                    let node = self
                        .nodes
                        .owner_of(slot)
                        .unwrap_or_else(|| format!("slot {slot}"));
                    match groups.iter_mut().find(|(owner, _)| *owner == node) {
                        Some((_, group)) => group.push(at),
                        None => groups.push((node, vec![at])),
                    }
                }
                groups.into_iter().map(|(_, group)| group).collect()
            }
        }
    }

    /// Whether the notification link must check its own node's health: on a cluster a
    /// pooled call may go to any node, and the link's node is the one that matters.
    pub(crate) fn is_cluster(&self) -> bool {
        !matches!(self.target, Target::Server(_))
    }

    /// Runs `call` on a pooled connection. A failure to reach Redis (refused, reset,
    /// deadline passed) drops the connection and starts the back-off. A pooled
    /// connection that the server closed while it was idle (`CLIENT KILL`, a server
    /// `timeout`, a load balancer) costs a reconnect, not a back-off: the idle ones are
    /// dropped too (they are likely closed as well) and the call runs once more on a
    /// new connection.
    pub(crate) fn run<T>(
        &self,
        mut call: impl FnMut(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let down_until = self.down_until.load(Ordering::Relaxed);
        if down_until != 0 && self.now_nanos() < down_until {
            return Err(Error::Unavailable);
        }
        let pooled = lock(&self.idle).pop();
        let reused = pooled.is_some();
        let con = match pooled {
            Some(con) => con,
            None => self.open_or_back_off()?,
        };
        match self.run_on(con, &mut call, reused) {
            Err(Retry::Closed) => {
                lock(&self.idle).clear();
                let con = self.open_or_back_off()?;
                self.run_on(con, &mut call, false)
                    .map_err(Retry::into_error)
            }
            result => result.map_err(Retry::into_error),
        }
    }

    fn open_or_back_off(&self) -> Result<Con, Error> {
        self.connect().map_err(|err| {
            self.mark_down();
            self.health.report(
                &cause_of(&err),
                "cannot connect to Redis, using local rules",
                &err,
            );
            Error::Redis(err)
        })
    }

    fn run_on<T>(
        &self,
        mut con: Con,
        call: &mut impl FnMut(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
        reused: bool,
    ) -> Result<T, Retry> {
        #[cfg(feature = "cluster")]
        if let Con::Cluster(cluster) = &mut con {
            let mut watched = crate::slots::Watched {
                con: cluster.as_mut(),
                nodes: &self.nodes,
                now: self.now_nanos(),
                node: None,
                skipped: false,
            };
            let result = call(&mut watched);
            let (node, skipped) = (watched.node.take(), watched.skipped);
            return self.settle(con, result, node, skipped, reused);
        }
        let result = call(con.as_dyn());
        self.settle(con, result, None, false, reused)
    }

    /// Pools the connection again, or drops it and starts a back-off: of the whole tier,
    /// or on a cluster of the `node` the failed call went to. `skipped`: the call was
    /// refused at once because its node is backing off.
    fn settle<T>(
        &self,
        con: Con,
        result: redis::RedisResult<T>,
        node: Option<String>,
        skipped: bool,
        reused: bool,
    ) -> Result<T, Retry> {
        let keep = |con: Con| {
            let mut idle = lock(&self.idle);
            if idle.len() < MAX_IDLE {
                idle.push(con);
            }
        };
        let err = match result {
            Ok(answer) => {
                self.down_until.store(0, Ordering::Relaxed);
                keep(con);
                return Ok(answer);
            }
            Err(_) if skipped => {
                keep(con);
                return Err(Retry::Failed(Error::Unavailable));
            }
            Err(err) => err,
        };
        let cause = cause_of(&err);
        let refused = is_refusal(&err);
        if reused && !err.is_timeout() && (err.is_io_error() || err.is_connection_dropped()) {
            // Closed by the server while idle: no news about Redis itself.
            return Err(Retry::Closed);
        }
        if refused {
            // Asking again will not help until an operator fixes the credentials.
            self.mark_down();
            self.health.report(
                &cause,
                "Redis refused the URL's credentials, using local rules",
                &err,
            );
        } else if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
            // The connection may hold a half-read answer: never reuse it.
            match node {
                #[cfg(feature = "cluster")]
                Some(node) => {
                    self.nodes.mark_down(&node, self.backoff_until());
                    self.nodes.mark_stale();
                    let what = format!(
                        "Redis Cluster node {node} unreachable, using local rules for its keys"
                    );
                    self.health.report(&cause, &what, &err);
                }
                _ => {
                    self.mark_down();
                    self.health
                        .report(&cause, "Redis unreachable, using local rules", &err);
                }
            }
        } else if err.redirect_node().is_some() {
            // The cluster moved a slot: a new connection reads the new slot map.
            #[cfg(feature = "cluster")]
            self.nodes.mark_stale();
            self.health
                .report(&cause, "Redis Cluster moved a slot", &err);
        } else {
            // A script's error (WRONGTYPE: foreign data in the slot's keys, an evicted
            // or flushed script, ...): the call follows the local rules.
            self.health
                .report(&cause, "Redis answered an error, using local rules", &err);
            if !err.is_unrecoverable_error() {
                keep(con);
            }
        }
        Err(Retry::Failed(Error::Redis(err)))
    }
}

/// A call's failure: final, or on a pooled connection the server had closed.
enum Retry {
    Failed(Error),
    Closed,
}

impl Retry {
    fn into_error(self) -> Error {
        match self {
            Retry::Failed(err) => err,
            Retry::Closed => Error::Unavailable,
        }
    }
}
