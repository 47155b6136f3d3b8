//! On a Redis Cluster, which node a script goes to, so that a node that cannot be
//! reached backs off only the calls for its own slots (F7): keys of the live nodes
//! stay shared while it is down.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use redis::{Cmd, ConnectionLike, RedisResult, Value};

use crate::sync::{lock, read, write};

/// Hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// The hash slot of `key`: CRC16 (XMODEM) of its hash tag, or of the whole key when it
/// has none, modulo 16384, as Redis computes it.
pub(crate) fn hash_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .map(|close| &rest[..close])
        })
        .filter(|tag| !tag.is_empty());
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(key) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % SLOTS
}

/// The first key of an `EVAL`/`EVALSHA` (the only keyed commands the tier sends).
fn first_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let mut args = cmd.args_iter().map(|arg| match arg {
        redis::Arg::Simple(bytes) => Some(bytes),
        _ => None, // a cursor: never in a script call
    });
    let name = args.next()??;
    if !name.eq_ignore_ascii_case(b"EVALSHA") && !name.eq_ignore_ascii_case(b"EVAL") {
        return None;
    }
    let _script = args.next()??;
    let keys = args.next()??;
    if keys == b"0" {
        return None;
    }
    args.next()?.map(<[u8]>::to_vec)
}

/// The owner of each slot as last read from the cluster, and the nodes backing off.
pub(crate) struct Nodes {
    /// Whether the slot map must be read again: at first, after a slot moved or a node
    /// failed (the cluster may be changing hands).
    stale: AtomicBool,
    /// `(first slot, last slot, "host:port")`, from `CLUSTER SLOTS`.
    owners: RwLock<Vec<(u16, u16, String)>>,
    /// Node → nanoseconds (of the pool's clock) until which it counts as down.
    down_until: Mutex<HashMap<String, u64>>,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            stale: AtomicBool::new(true),
            owners: RwLock::default(),
            down_until: Mutex::default(),
        }
    }
}

impl Nodes {
    pub(crate) fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    pub(crate) fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Reads the slot map through `con`, to any node; whether it could. A failure keeps
    /// the old map: calls whose node is unknown back the whole tier off instead.
    pub(crate) fn refresh(&self, con: &mut dyn ConnectionLike) -> bool {
        let Ok(ranges) = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<Vec<Value>>>(con)
        else {
            return false;
        };
        let owners = ranges
            .iter()
            .filter_map(|range| {
                let int = |v: &Value| match v {
                    Value::Int(n) => u16::try_from(*n).ok(),
                    _ => None,
                };
                let Value::Array(master) = range.get(2)? else {
                    return None;
                };
                let host = match master.first()? {
                    Value::BulkString(host) => String::from_utf8_lossy(host).into_owned(),
                    _ => return None,
                };
                let port = int(master.get(1)?)?;
                Some((
                    int(range.first()?)?,
                    int(range.get(1)?)?,
                    format!("{host}:{port}"),
                ))
            })
            .collect();
        *write(&self.owners) = owners;
        self.stale.store(false, Ordering::Relaxed);
        true
    }

    /// The node that `cmd` goes to, if it is a script and the slot map knows its slot.
    fn node_of(&self, cmd: &Cmd) -> Option<String> {
        self.owner_of(hash_slot(&first_key(cmd)?))
    }

    /// The node that owns `slot`, if the slot map knows it.
    pub(crate) fn owner_of(&self, slot: u16) -> Option<String> {
        let owners = read(&self.owners);
        owners
            .iter()
            .find(|(first, last, _)| (*first..=*last).contains(&slot))
            .map(|(_, _, node)| node.clone())
    }

    pub(crate) fn mark_down(&self, node: &str, until: u64) {
        let mut down = lock(&self.down_until);
        down.insert(node.to_string(), until);
    }

    fn is_down(&self, node: &str, now: u64) -> bool {
        let down = lock(&self.down_until);
        down.get(node).is_some_and(|&until| now < until)
    }
}

/// A cluster connection that notes which node each script went to, and refuses at once
/// a script for a node that is backing off.
pub(crate) struct Watched<'a> {
    pub(crate) con: &'a mut dyn ConnectionLike,
    pub(crate) nodes: &'a Nodes,
    pub(crate) now: u64,
    /// The node of the last script sent.
    pub(crate) node: Option<String>,
    /// Whether a script was refused because its node is backing off.
    pub(crate) skipped: bool,
}

impl ConnectionLike for Watched<'_> {
    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        if let Some(node) = self.nodes.node_of(cmd) {
            if self.nodes.is_down(&node, self.now) {
                self.skipped = true;
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "cluster node backing off",
                )));
            }
            self.node = Some(node);
        }
        self.con.req_command(cmd)
    }

    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        self.con.req_packed_command(cmd)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        self.con.req_packed_commands(cmd, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.con.get_db()
    }

    fn check_connection(&mut self) -> bool {
        self.con.check_connection()
    }

    fn is_open(&self) -> bool {
        self.con.is_open()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_slots_are_redis_cluster_slots() {
        // Values from `CLUSTER KEYSLOT` and the Redis Cluster specification.
        assert_eq!(hash_slot(b"123456789"), 0x31C3 % SLOTS);
        assert_eq!(hash_slot(b"foo"), 12182);
        assert_eq!(hash_slot(b"{user1000}.following"), hash_slot(b"user1000"));
        assert_eq!(hash_slot(b"foo{}{bar}"), hash_slot(b"foo{}{bar}")); // empty tag: whole key
        assert_ne!(hash_slot(b"foo{}{bar}"), hash_slot(b"bar"));
        assert_eq!(
            hash_slot(b"dogpile:{ns:ab}:v"),
            hash_slot(b"dogpile:{ns:ab}:l")
        );
    }

    #[test]
    fn a_scripts_node_comes_from_its_first_key() {
        let nodes = Nodes::default();
        *nodes.owners.write().unwrap() = vec![
            (0, 8191, "a:1".to_string()),
            (8192, SLOTS - 1, "b:2".to_string()),
        ];
        let key = "dogpile:{ns:ab}:v";
        let expected = if hash_slot(key.as_bytes()) <= 8191 {
            "a:1"
        } else {
            "b:2"
        };
        let mut script = redis::cmd("EVALSHA");
        script
            .arg("0123")
            .arg(2)
            .arg(key)
            .arg("dogpile:{ns:ab}:l")
            .arg(5);
        assert_eq!(nodes.node_of(&script).as_deref(), Some(expected));
        assert_eq!(nodes.node_of(&redis::cmd("PING")), None);
        let mut keyless = redis::cmd("EVAL");
        keyless.arg("return 1").arg(0);
        assert_eq!(nodes.node_of(&keyless), None);
    }
}
