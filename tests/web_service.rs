//! The service of `examples/web_service.rs`, driven over real HTTP on a loopback port.
//!
//! For each dogpile variant: one backend query per expiry (plus the cold one); with an
//! inline refresh only the request that refreshes is slow (R3), with `background`
//! none is (R10); and `GET /stats` agrees with what the clients saw.
//!
//! The caches' time is a `dogpile::ManualClock` the test advances between waves. A
//! request is *slow* when it cannot finish while the backend is held shut: the test
//! holds the backend, sends a wave, collects the answers that arrive, and only then
//! lets the backend finish. A request that waited for the query would hold its wave
//! up until the bound and fail the test. The whole test runs under a timeout.

use dogpile::ManualClock;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};
use support::web_app::{self, Backend, Report, ServiceStats};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// The clock of the service's dogpile caches.
static CLOCK: LazyLock<ManualClock> = LazyLock::new(web_app::use_manual_clock);

/// Both dogpile caches read `CLOCK`: one test advancing it would age the other test's
/// values, so the tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Concurrent requests per wave.
const WAVE: usize = 16;
/// Expiries per variant.
const EXPIRIES: u64 = 3;
/// The most any single step may take before the test fails instead of hanging.
const BOUND: Duration = Duration::from_secs(10);
/// The most the whole test may take.
const WHOLE: Duration = Duration::from_secs(60);

/// A started service and a client for it.
struct Service {
    address: SocketAddr,
    client: reqwest::Client,
}

impl Service {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let address = listener.local_addr().unwrap();
        LazyLock::force(&CLOCK); // before the first request stamps a value
        tokio::spawn(web_app::serve(listener));
        Service {
            address,
            client: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends `WAVE` concurrent requests for `path`; each answers with its report and
    /// how long it took.
    fn wave(&self, path: &str) -> JoinSet<(Report, Duration)> {
        let mut wave = JoinSet::new();
        for _ in 0..WAVE {
            let (client, url) = (self.client.clone(), self.url(path));
            wave.spawn(async move {
                let begun = Instant::now();
                let report = get_json(&client, &url).await;
                (report, begun.elapsed())
            });
        }
        wave
    }

    async fn stats(&self) -> ServiceStats {
        get_json(&self.client, &self.url("/stats")).await
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> T {
    client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: unexpected body: {e}"))
}

/// `n` answers of `wave`, each within the bound.
async fn answers(
    wave: &mut JoinSet<(Report, Duration)>,
    n: usize,
    what: &str,
) -> Vec<(Report, Duration)> {
    let mut answers = Vec::new();
    for i in 0..n {
        let answer = bounded(
            wave.join_next(),
            &format!("{what}: answer {} of {n}", i + 1),
        )
        .await
        .expect("a request is outstanding")
        .expect("a request task panicked");
        answers.push(answer);
    }
    answers
}

async fn bounded<F: Future>(future: F, what: &str) -> F::Output {
    within(BOUND, future, what).await
}

async fn within<F: Future>(bound: Duration, future: F, what: &str) -> F::Output {
    timeout(bound, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: not done within {bound:?}"))
}

/// Waits (bounded) until `condition` holds.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(
        async {
            while !condition() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        },
        what,
    )
    .await
}

/// The cold start: one query, every request of the wave gets its value.
async fn cold(service: &Service, path: &str, backend: &Backend) -> usize {
    let mut wave = service.wave(path);
    let cold = answers(&mut wave, WAVE, "cold wave").await;
    assert!(cold.iter().all(|(r, _)| r.version == 1), "{cold:?}");
    assert_eq!(backend.calls(), 1, "one query for the cold key (R1)");
    WAVE
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_refresh_makes_only_the_refreshing_request_slow() {
    let _turn = ONE_AT_A_TIME.lock().await;
    within(WHOLE, inline_refresh(), "the whole test").await;
}

async fn inline_refresh() {
    let service = Service::start().await;
    let backend = &web_app::DOGPILE_BACKEND;
    let path = "/dogpile/7";
    let mut requests = cold(&service, path, backend).await;

    for expiry in 1..=EXPIRIES {
        backend.hold();
        CLOCK.advance(web_app::TTL);
        let mut wave = service.wave(path);
        // Everyone but the refreshing request is answered while the query is held: they
        // got the stale report and did not wait (R3).
        let fast = answers(
            &mut wave,
            WAVE - 1,
            "stale answers while the backend is held",
        )
        .await;
        assert!(
            fast.iter().all(|(r, _)| r.version == expiry),
            "the stale report: {fast:?}"
        );
        assert_eq!(backend.calls(), expiry + 1, "one refresh per expiry");
        // The refreshing request is still waiting for its query.
        assert!(
            timeout(Duration::from_millis(100), wave.join_next())
                .await
                .is_err(),
            "the refreshing request waits for the held query"
        );
        backend.release();
        let slow = answers(&mut wave, 1, "the refreshing request").await;
        let (report, took) = &slow[0];
        assert_eq!(report.version, expiry + 1, "the refreshed report");
        assert!(*took >= web_app::QUERY, "it waited for the query: {took:?}");
        requests += WAVE;

        // Fresh again: nobody waits, nothing is queried.
        let mut wave = service.wave(path);
        let fresh = answers(&mut wave, WAVE, "fresh wave").await;
        assert!(fresh.iter().all(|(r, _)| r.version == expiry + 1));
        requests += WAVE;
    }

    assert_eq!(
        backend.calls(),
        1 + EXPIRIES,
        "backend calls = expiries + cold"
    );
    let stats = service.stats().await;
    assert_eq!(stats.backend_calls.dogpile, 1 + EXPIRIES);
    assert_eq!(stats.dogpile.calls(), requests as u64, "{}", stats.dogpile);
    // The cold wave: the requests that found no value are misses; all but the one
    // that created waited for it (R1).
    assert_eq!(
        stats.dogpile.waits + 1,
        stats.dogpile.misses,
        "{}",
        stats.dogpile
    );
    assert_eq!(stats.dogpile.refreshes, EXPIRIES, "{}", stats.dogpile);
    assert_eq!(
        stats.dogpile.stale_hits,
        EXPIRIES * WAVE as u64,
        "{}",
        stats.dogpile
    );
    assert_eq!(stats.dogpile.failures, 0, "{}", stats.dogpile);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_refresh_makes_no_request_slow() {
    let _turn = ONE_AT_A_TIME.lock().await;
    within(WHOLE, background_refresh(), "the whole test").await;
}

async fn background_refresh() {
    let service = Service::start().await;
    let backend = &web_app::BACKGROUND_BACKEND;
    let path = "/background/7";
    let mut requests = cold(&service, path, backend).await;

    for expiry in 1..=EXPIRIES {
        backend.hold();
        CLOCK.advance(web_app::TTL);
        // Every request, the one that starts the refresh included, is answered while
        // the query is held: nobody waits (R10).
        let mut wave = service.wave(path);
        let all = answers(&mut wave, WAVE, "answers while the backend is held").await;
        assert!(
            all.iter().all(|(r, _)| r.version == expiry),
            "the stale report: {all:?}"
        );
        requests += WAVE;
        eventually("the background refresh starts", || {
            backend.calls() == expiry + 1
        })
        .await;
        backend.release();
        // Once the refresh is published, a request gets the new report.
        let url = service.url(path);
        bounded(
            async {
                loop {
                    requests += 1;
                    let report: Report = get_json(&service.client, &url).await;
                    if report.version == expiry + 1 {
                        break;
                    }
                    assert_eq!(report.version, expiry, "stale until the refresh lands");
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            },
            "the refreshed report",
        )
        .await;
    }

    assert_eq!(
        backend.calls(),
        1 + EXPIRIES,
        "backend calls = expiries + cold"
    );
    let stats = service.stats().await;
    assert_eq!(stats.backend_calls.background, 1 + EXPIRIES);
    assert_eq!(
        stats.background.calls(),
        requests as u64,
        "{}",
        stats.background
    );
    // The cold wave: the requests that found no value are misses; all but the one
    // that created waited for it (R1).
    assert_eq!(
        stats.background.waits + 1,
        stats.background.misses,
        "{}",
        stats.background
    );
    assert_eq!(stats.background.refreshes, EXPIRIES, "{}", stats.background);
    assert_eq!(stats.background.failures, 0, "{}", stats.background);
}
