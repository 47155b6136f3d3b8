//! Real `redis-server`s for tests, benches and demos: one on a free loopback port with
//! persistence off ([`RedisServer`]), a three-node cluster ([`cluster`]) and a TLS-only
//! server ([`tls`], feature `tls`), each with bounded waits for readiness and killed on
//! drop; and the harness of test binaries that need one ([`Suite`],
//! [`redis_tests!`](crate::redis_tests)), which skips their tests where no
//! `redis-server` is installed.

pub mod cluster;
mod find;
mod harness;
#[cfg(feature = "tls")]
pub mod tls;

pub use find::{how_to_install, required, server_binary, REQUIRE_VAR, SERVER_VAR};
pub use harness::{block_on, skip_without_server, Suite};

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer its first PING.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// The `redis-server` binary, or a panic that says how to get one.
fn binary() -> &'static Path {
    server_binary().unwrap_or_else(|missing| panic!("{missing}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

/// A `redis-server` owned by one test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port and waits (bounded) until it answers.
    pub fn start() -> RedisServer {
        for _attempt in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
            };
            // Another process may take the port between probe and bind: try another.
            if server.spawn().is_ok() {
                return server;
            }
        }
        panic!("{:?} did not start on a free port in 5 attempts", binary());
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(binary())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &std::env::temp_dir().to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {:?}: {e}", binary()))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if self.ping() {
                return Ok(());
            }
            if let Some(Ok(Some(_exited))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err("redis-server exited".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        Err("redis-server not ready in time".into())
    }

    /// Whether the server answers PING within 200 ms.
    pub fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let deadline = Some(Duration::from_millis(200));
        let _ = stream.set_read_timeout(deadline);
        let _ = stream.set_write_timeout(deadline);
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }

    /// `redis://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .expect("redis-server is not running")
            .id()
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("cannot run kill");
        assert!(status.success(), "kill {signal} failed");
    }

    /// Freezes the server (SIGSTOP): connections are accepted by the kernel, nothing is
    /// answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Resumes a frozen server (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a fresh, empty server on the same port after [`kill`](Self::kill).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "restart after kill");
        let started = Instant::now();
        // The old socket may linger for a moment.
        while let Err(err) = self.spawn() {
            assert!(started.elapsed() < READY_WITHIN, "restart failed: {err}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A plain connection for inspecting or tampering with the server's state.
    pub fn client(&self) -> ::redis::Connection {
        let client = ::redis::Client::open(self.url()).unwrap();
        let con = client
            .get_connection_with_timeout(Duration::from_secs(2))
            .unwrap();
        con.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        con
    }

    /// The server's keys that match `pattern` (`KEYS`).
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        ::redis::cmd("KEYS")
            .arg(pattern)
            .query(&mut self.client())
            .unwrap()
    }

    /// The one key of a tier's slot in namespace `ns` ending in `suffix` (`v`: the
    /// value, `l`: the lease); panics unless there is exactly one.
    pub fn slot_key(&self, ns: &str, suffix: &str) -> String {
        let found = self.keys(&format!("dogpile:{{{ns}:*}}:{suffix}"));
        assert_eq!(found.len(), 1, "{found:?}");
        found[0].clone()
    }

    /// The server's time (`TIME`), in milliseconds.
    pub fn now_ms(&self) -> u64 {
        let (secs, micros): (u64, u64) = ::redis::cmd("TIME").query(&mut self.client()).unwrap();
        secs * 1000 + micros / 1000
    }

    /// How many times `command` (lowercase, e.g. `"evalsha"`) ran, by `INFO commandstats`.
    pub fn calls(&self, command: &str) -> u64 {
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.client())
            .unwrap();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    }

    /// Total commands run, by `INFO commandstats`, minus the INFO calls themselves.
    pub fn total_calls(&self) -> u64 {
        let info: String = ::redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut self.client())
            .unwrap();
        info.lines()
            .filter(|line| line.starts_with("cmdstat_") && !line.starts_with("cmdstat_info:"))
            .filter_map(|line| line.split("calls=").nth(1))
            .filter_map(|rest| rest.split(',').next())
            .map(|n| n.parse::<u64>().unwrap())
            .sum()
    }

    /// Subscribers of `channel` (to wait until a tier listens before publishing).
    pub fn subscribers(&self, channel: &str) -> u64 {
        let answer: (String, u64) = ::redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query(&mut self.client())
            .unwrap();
        answer.1
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `done` every 10 ms for at most `within`; whether it became true.
pub fn holds_within(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if done() {
            return true;
        }
        if started.elapsed() >= within {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
