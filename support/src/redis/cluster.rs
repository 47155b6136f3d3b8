//! Test support: a three-node Redis Cluster of real `redis-server`s on free loopback
//! ports (no replicas, persistence off), formed with `CLUSTER ADDSLOTSRANGE` and
//! `CLUSTER MEET` (no `redis-cli` needed), with bounded waits; every node is killed on
//! drop and its directory removed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{binary, free_port, holds_within, RedisServer, READY_WITHIN};

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;
/// How long the nodes may take to agree that the cluster is up.
const FORMED_WITHIN: Duration = Duration::from_secs(15);

/// Three master nodes; node `i` owns the `i`-th third of the hash slots.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    /// The cluster bus port of each node.
    bus_ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three nodes, forms the cluster and waits (bounded) until every node says
    /// `cluster_state:ok` and knows who owns every slot.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "dogpile-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cannot create the cluster's directory");
        let mut cluster = RedisCluster {
            nodes: Vec::new(),
            bus_ports: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let (node, bus_port) = cluster.start_node();
            cluster.nodes.push(node);
            cluster.bus_ports.push(bus_port);
        }
        let third = SLOTS / 3;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let first = third * i as u16;
            let last = if i == 2 { SLOTS - 1 } else { first + third - 1 };
            let _: () = ::redis::cmd("CLUSTER")
                .arg("ADDSLOTSRANGE")
                .arg(first)
                .arg(last)
                .query(&mut node.client())
                .expect("CLUSTER ADDSLOTSRANGE");
        }
        for (other, bus_port) in cluster.nodes.iter().zip(&cluster.bus_ports).skip(1) {
            let _: () = ::redis::cmd("CLUSTER")
                .arg("MEET")
                .arg("127.0.0.1")
                .arg(other.port())
                .arg(*bus_port)
                .query(&mut cluster.nodes[0].client())
                .expect("CLUSTER MEET");
        }
        let formed = holds_within(FORMED_WITHIN, || {
            cluster.nodes.iter().all(|node| {
                let info: String = ::redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut node.client())
                    .unwrap();
                let slots: Vec<::redis::Value> = ::redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query(&mut node.client())
                    .unwrap();
                info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:3")
                    && slots.len() == 3
            })
        });
        assert!(formed, "the cluster did not form within {FORMED_WITHIN:?}");
        cluster
    }

    fn start_node(&self) -> (RedisServer, u16) {
        for _attempt in 0..5 {
            let (port, bus_port) = (free_port(), free_port());
            let child = Command::new(binary())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes"])
                .args(["--cluster-port", &bus_port.to_string()])
                .arg("--cluster-config-file")
                .arg(self.dir.join(format!("nodes-{port}.conf")))
                // The live nodes keep serving their own slots while one is down.
                .args(["--cluster-require-full-coverage", "no"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&self.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", binary()));
            let mut node = RedisServer {
                child: Some(child),
                port,
            };
            if holds_within(READY_WITHIN, || node.ping() || node.exited()) && node.ping() {
                return (node, bus_port);
            }
            // Another process took a port between probe and bind: try others.
            node.kill();
        }
        panic!("a cluster node did not start");
    }

    /// `redis://127.0.0.1:PORT` of every node, for `RedisTier::open_cluster`.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    pub fn node(&self, i: usize) -> &RedisServer {
        &self.nodes[i]
    }

    /// Kills node `i` (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// The node that owns `redis_key`'s hash slot as the cluster was formed (not after
    /// [`move_slot_of`](Self::move_slot_of)), by `CLUSTER KEYSLOT`.
    pub fn owner_of(&self, redis_key: &str) -> usize {
        let slot: u16 = ::redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(redis_key)
            .query(&mut self.live_node().client())
            .unwrap();
        usize::from(slot / (SLOTS / 3)).min(2)
    }

    /// Keys stored on each node (`DBSIZE`); 0 for a killed node.
    pub fn sizes(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|node| {
                if node.child.is_none() {
                    return 0;
                }
                ::redis::cmd("DBSIZE").query(&mut node.client()).unwrap()
            })
            .collect()
    }

    /// Which node gained a key while `make` ran (the slot of one new cache key).
    pub fn node_gaining_a_key(&self, make: impl FnOnce()) -> usize {
        let before = self.sizes();
        make();
        let after = self.sizes();
        let grown: Vec<usize> = (0..3).filter(|&i| after[i] > before[i]).collect();
        assert_eq!(grown.len(), 1, "sizes {before:?} -> {after:?}");
        grown[0]
    }

    /// Subscribers of `channel` over the live nodes (each node counts its own).
    pub fn subscribers(&self, channel: &str) -> u64 {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| node.subscribers(channel))
            .sum()
    }

    /// Every Redis key on every live node.
    pub fn all_keys(&self) -> Vec<String> {
        let mut keys = Vec::new();
        for node in self.nodes.iter().filter(|node| node.child.is_some()) {
            let found: Vec<String> = ::redis::cmd("KEYS")
                .arg("*")
                .query(&mut node.client())
                .unwrap();
            keys.extend(found);
        }
        keys
    }

    /// Hands the (empty) hash slot of `redis_key` from node `from` to node `to`, telling
    /// every node, and waits (bounded) until all agree.
    pub fn move_slot_of(&self, redis_key: &str, from: usize, to: usize) {
        let slot: u16 = ::redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(redis_key)
            .query(&mut self.nodes[from].client())
            .unwrap();
        let target: String = ::redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.nodes[to].client())
            .unwrap();
        // The new owner first, so that it bumps its epoch and wins the gossip.
        for i in [to, from]
            .into_iter()
            .chain((0..3).filter(|&i| i != to && i != from))
        {
            let _: () = ::redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&target)
                .query(&mut self.nodes[i].client())
                .expect("CLUSTER SETSLOT");
        }
        let port = i64::from(self.nodes[to].port());
        let agreed = holds_within(FORMED_WITHIN, || {
            self.nodes.iter().all(|node| {
                let slots: Vec<Vec<::redis::Value>> = ::redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query(&mut node.client())
                    .unwrap();
                slots.iter().any(|range| {
                    let int = |v: &::redis::Value| match v {
                        ::redis::Value::Int(n) => *n,
                        _ => -1,
                    };
                    let owner = match &range[2] {
                        ::redis::Value::Array(node) => int(&node[1]),
                        _ => -1,
                    };
                    int(&range[0]) <= i64::from(slot)
                        && i64::from(slot) <= int(&range[1])
                        && owner == port
                })
            })
        });
        assert!(agreed, "the nodes did not agree on the move of slot {slot}");
    }

    fn live_node(&self) -> &RedisServer {
        self.nodes
            .iter()
            .find(|node| node.child.is_some())
            .expect("every node is down")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// Whether the process has exited (it could not bind its port).
    fn exited(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(Some(_))))
    }
}
