//! The service behind HTTP, shared by `examples/web_service.rs` (which serves it and
//! runs a load against it) and `tests/web_service.rs` (which drives it with a real
//! HTTP client).
//!
//! Every route answers `GET /{variant}/{key}` with the same slow backend query (a
//! simulated 50 ms database call), through one of four caches:
//!
//! | route | cache |
//! |---|---|
//! | `/dogpile/{key}` | `#[dogpile]` on an `async fn`: one request per expiry refreshes, the others get the stale value |
//! | `/background/{key}` | `#[dogpile(background)]`: the refresh runs on a task; nobody waits |
//! | `/moka/{key}` | `moka::future::Cache::get_with`: one request refreshes, the others wait for it |
//! | `/none/{key}` | no cache: every request queries the backend |
//!
//! `GET /stats` returns the two dogpile caches' [`dogpile::Stats`] and every backend's
//! call count as JSON.
//!
//! The two dogpile caches read the system clock, or, once a test called
//! [`use_manual_clock`], a `dogpile::ManualClock` that the test advances.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use dogpile::{dogpile, Clock, ManualClock, SystemClock};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{LazyLock, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a cached report stays fresh. The `#[dogpile]` attributes below take it as
/// a literal: keep them equal.
pub const TTL: Duration = Duration::from_millis(500);

/// How long one backend query takes.
pub const QUERY: Duration = Duration::from_millis(50);

/// What the backend computes for a key: `version` numbers its queries, so a client can
/// tell a stale report (an older version) from a refreshed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub key: u64,
    pub version: u64,
}

// ---------------------------------------------------------------------------------
// The slow backend

/// One variant's backend: counts its queries and can be held shut, so that a test
/// decides when a query in flight may finish.
pub struct Backend {
    calls: AtomicU64,
    finished: Mutex<Vec<Instant>>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Backend {
    fn new() -> Self {
        Backend {
            calls: AtomicU64::new(0),
            finished: Mutex::new(Vec::new()),
            open: tokio::sync::watch::Sender::new(true),
        }
    }

    /// The query: [`QUERY`] of latency (plus however long the backend is held).
    pub async fn query(&self, key: u64) -> Report {
        let version = self.calls.fetch_add(1, SeqCst) + 1;
        tokio::time::sleep(QUERY).await;
        let mut open = self.open.subscribe();
        open.wait_for(|open| *open)
            .await
            .expect("the sender lives in a static");
        self.finished.lock().unwrap().push(Instant::now());
        Report { key, version }
    }

    /// Queries started so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(SeqCst)
    }

    /// When each query finished, in order.
    pub fn finished(&self) -> Vec<Instant> {
        self.finished.lock().unwrap().clone()
    }

    /// From now on queries do not finish until [`release`](Self::release).
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Lets held queries (and every later one) finish.
    pub fn release(&self) {
        self.open.send_replace(true);
    }
}

pub static DOGPILE_BACKEND: LazyLock<Backend> = LazyLock::new(Backend::new);
pub static BACKGROUND_BACKEND: LazyLock<Backend> = LazyLock::new(Backend::new);
pub static MOKA_BACKEND: LazyLock<Backend> = LazyLock::new(Backend::new);
pub static NO_CACHE_BACKEND: LazyLock<Backend> = LazyLock::new(Backend::new);

// ---------------------------------------------------------------------------------
// The clock

static MANUAL_CLOCK: OnceLock<ManualClock> = OnceLock::new();

/// From now on the service's dogpile caches read the returned clock (the same one on
/// every call) instead of the system's. Call it before the first request.
pub fn use_manual_clock() -> ManualClock {
    MANUAL_CLOCK.get_or_init(ManualClock::new).clone()
}

/// The clock of the service's dogpile caches: the manual one if a test asked for it.
struct AppClock;

impl Clock for AppClock {
    fn now(&self) -> Duration {
        match MANUAL_CLOCK.get() {
            Some(manual) => manual.now(),
            None => SystemClock.now(),
        }
    }
}

// ---------------------------------------------------------------------------------
// The cached functions

/// The report for `key`, refreshed inline by the one request that finds it stale.
#[dogpile(ttl = "500ms", clock = AppClock)]
pub async fn report(key: u64) -> Report {
    DOGPILE_BACKEND.query(key).await
}

/// The report for `key`, refreshed on a tokio task while every request gets the
/// stale one.
#[dogpile(ttl = "500ms", background, clock = AppClock)]
pub async fn report_background(key: u64) -> Report {
    BACKGROUND_BACKEND.query(key).await
}

// ---------------------------------------------------------------------------------
// The routes

#[derive(Clone)]
struct AppState {
    moka: moka::future::Cache<u64, Report>,
}

/// The service's routes.
pub fn router() -> Router {
    let state = AppState {
        moka: moka::future::Cache::builder().time_to_live(TTL).build(),
    };
    Router::new()
        .route(
            "/dogpile/{key}",
            get(|Path(key): Path<u64>| async move { Json(report(key).await) }),
        )
        .route(
            "/background/{key}",
            get(|Path(key): Path<u64>| async move { Json(report_background(key).await) }),
        )
        .route(
            "/moka/{key}",
            get(
                |State(state): State<AppState>, Path(key): Path<u64>| async move {
                    Json(state.moka.get_with(key, MOKA_BACKEND.query(key)).await)
                },
            ),
        )
        .route(
            "/none/{key}",
            get(|Path(key): Path<u64>| async move { Json(NO_CACHE_BACKEND.query(key).await) }),
        )
        .route("/stats", get(|| async { Json(stats()) }))
        .with_state(state)
}

/// What `GET /stats` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct ServiceStats {
    pub dogpile: dogpile::Stats,
    pub background: dogpile::Stats,
    pub backend_calls: BackendCalls,
}

/// Backend queries per variant.
#[derive(Debug, Serialize, Deserialize)]
pub struct BackendCalls {
    pub dogpile: u64,
    pub background: u64,
    pub moka: u64,
    pub none: u64,
}

fn stats() -> ServiceStats {
    ServiceStats {
        dogpile: REPORT.stats(),
        background: REPORT_BACKGROUND.stats(),
        backend_calls: BackendCalls {
            dogpile: DOGPILE_BACKEND.calls(),
            background: BACKGROUND_BACKEND.calls(),
            moka: MOKA_BACKEND.calls(),
            none: NO_CACHE_BACKEND.calls(),
        },
    }
}

/// Serves the routes on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}
