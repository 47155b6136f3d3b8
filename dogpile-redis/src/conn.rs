//! Connections with a deadline on every round trip (F7), and a short back-off after a
//! failure so that callers do not each wait out a deadline while Redis is down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Client, Connection};

use crate::Error;

/// Idle connections kept for reuse; more are opened under load and dropped after.
const MAX_IDLE: usize = 16;

pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    /// Deadline of one connect (with its handshake) and of one round trip.
    deadline: Duration,
    /// After a failure to reach Redis, calls fail at once for this long.
    backoff: Duration,
    /// Nanoseconds since `epoch` until which Redis counts as down; 0 when it is up.
    down_until: AtomicU64,
    epoch: Instant,
}

impl Pool {
    pub(crate) fn new(client: Client, deadline: Duration, backoff: Duration) -> Self {
        Pool {
            client,
            idle: Mutex::new(Vec::new()),
            deadline,
            backoff,
            down_until: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn mark_down(&self) {
        let until = self
            .now_nanos()
            .saturating_add(self.backoff.as_nanos() as u64);
        self.down_until.store(until.max(1), Ordering::Relaxed);
    }

    /// Opens a connection whose connect, handshake and every later read and write
    /// are bounded by the deadline.
    pub(crate) fn connect(&self) -> Result<Connection, redis::RedisError> {
        let con = self.client.get_connection_with_timeout(self.deadline)?;
        con.set_read_timeout(Some(self.deadline))?;
        con.set_write_timeout(Some(self.deadline))?;
        Ok(con)
    }

    /// Runs `call` on a pooled connection. A failure to reach Redis (refused, reset,
    /// deadline passed) drops the connection and starts the back-off.
    pub(crate) fn run<T>(
        &self,
        call: impl FnOnce(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let down_until = self.down_until.load(Ordering::Relaxed);
        if down_until != 0 && self.now_nanos() < down_until {
            return Err(Error::Unavailable);
        }
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut con = match pooled {
            Some(con) => con,
            None => self.connect().inspect_err(|_| self.mark_down())?,
        };
        match call(&mut con) {
            Ok(answer) => {
                self.down_until.store(0, Ordering::Relaxed);
                let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                if idle.len() < MAX_IDLE {
                    idle.push(con);
                }
                Ok(answer)
            }
            Err(err) => {
                if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
                    // The connection may hold a half-read answer: never reuse it.
                    self.mark_down();
                    tracing::warn!(%err, "dogpile-redis: Redis unreachable, using local rules");
                } else if !err.is_unrecoverable_error() {
                    let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
                    if idle.len() < MAX_IDLE {
                        idle.push(con);
                    }
                }
                Err(Error::Redis(err))
            }
        }
    }
}
