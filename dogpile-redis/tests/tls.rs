//! Trust: the fleet tier over TLS (`rediss://`, feature `tls`) against a real
//! `redis-server` that speaks only TLS, with a certificate authority made by the test;
//! and the URL's credentials (AUTH password, ACL user) against a real server. A server
//! not to be trusted, or credentials it refuses, are a clear error from
//! `RedisTier::ping` and a local fallback for the cache (F7), never a hang.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use dogpile::{Cache, ManualClock};
use dogpile_redis::RedisTier;
use support::redis::RedisServer;

const TTL: Duration = Duration::from_secs(60);

fn cache(tier: RedisTier, clock: &ManualClock) -> Cache<String, String> {
    Cache::builder()
        .ttl(TTL)
        .clock(clock.clone())
        .shared(tier.namespace("trust"))
        .build()
}

/// Runs `f` on a thread; its result, or a failure if it took longer than `within`.
fn bounded<T: Send>(within: Duration, f: impl FnOnce() -> T + Send) -> (T, Duration) {
    let (done, finished) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            let value = f();
            let _ = done.send((value, started.elapsed()));
        });
        finished.recv_timeout(within).expect("hung")
    })
}

/// Two caches on `tier_a` and `tier_b`: whether a value made by one reaches the other.
fn shares(tier_a: RedisTier, tier_b: RedisTier) -> bool {
    let clock = ManualClock::new();
    let (a, b) = (cache(tier_a, &clock), cache(tier_b, &clock));
    assert_eq!(a.get_with("k".into(), || "from a".into()), "from a");
    b.get_with("k".into(), || "from b".into()) == "from a"
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;
    use dogpile_redis::Error;
    use support::redis::tls::{TestCa, TlsRedis};

    pub fn a_value_is_shared_over_tls_with_a_private_ca() {
        let ca = TestCa::new("dogpile test CA");
        let server = TlsRedis::start(&ca, &[]); // no plain port: only TLS gets through
        let open = || RedisTier::open_with_root_ca(&server.url(), &ca.pem).unwrap();
        open().ping().expect("a TLS ping");
        assert!(shares(open(), open()), "no value shared over TLS");
    }

    pub fn a_server_certificate_from_another_ca_is_refused() {
        let (trusted, other) = (TestCa::new("trusted CA"), TestCa::new("other CA"));
        let server = TlsRedis::start(&other, &[]);
        for tier in [
            RedisTier::open_with_root_ca(&server.url(), &trusted.pem).unwrap(),
            // The public roots do not know a private CA either.
            RedisTier::open(&server.url()).unwrap(),
        ] {
            let (answer, took) = bounded(Duration::from_secs(5), || tier.ping());
            let err = answer.expect_err("an untrusted server was talked to");
            assert!(
                err.to_string().contains("certificate"),
                "not a clear error: {err}"
            );
            assert!(took < Duration::from_secs(2), "{took:?}");
        }
        // The caches follow their local rules at once: each makes its own.
        let open = || RedisTier::open_with_root_ca(&server.url(), &trusted.pem).unwrap();
        let (shared, took) = bounded(Duration::from_secs(5), || shares(open(), open()));
        assert!(!shared, "a value went through an untrusted server");
        assert!(took < Duration::from_secs(2), "{took:?}");
    }

    pub fn a_password_works_over_tls_too() {
        let ca = TestCa::new("dogpile test CA");
        let server = TlsRedis::start(&ca, &["--requirepass", "s3cret"]);
        let url = format!("rediss://:s3cret@127.0.0.1:{}/", server.port());
        let open = || RedisTier::open_with_root_ca(&url, &ca.pem).unwrap();
        open().ping().expect("an authenticated TLS ping");
        assert!(
            shares(open(), open()),
            "no value shared over TLS with a password"
        );
    }

    pub fn a_root_ca_needs_tls_and_a_certificate() {
        let ca = TestCa::new("dogpile test CA");
        let err = RedisTier::open_with_root_ca("redis://127.0.0.1:6379/", &ca.pem).unwrap_err();
        assert!(err.to_string().contains("rediss://"), "{err}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        for (pem, says) in [("no PEM", "PEM"), (garbage, "certificate")] {
            let err = RedisTier::open_with_root_ca("rediss://127.0.0.1:6379/", pem).unwrap_err();
            assert!(matches!(err, Error::InvalidRootCa(_)), "{err:?}");
            let text = err.to_string();
            assert!(
                text.starts_with("invalid root certificate authority"),
                "{text}"
            );
            assert!(text.contains(says), "{text}");
        }
    }
}

/// A server that asks for `password` (of the default user) from now on, and an ACL user
/// `app` with password `app-pass` who may use the tier's keys and channels only.
fn protected(server: &RedisServer, password: &str) {
    let mut con = server.client();
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("app")
        .arg(&["on", ">app-pass", "~dogpile:*", "&dogpile:*", "+@all"])
        .query(&mut con)
        .unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(password)
        .query(&mut con)
        .unwrap();
}

/// `INFO errorstats` count of `code` (e.g. `"NOAUTH"`), asked as the ACL user.
fn errors(server: &RedisServer, code: &str) -> u64 {
    let client =
        redis::Client::open(format!("redis://app:app-pass@127.0.0.1:{}/", server.port())).unwrap();
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(2))
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut con)
        .unwrap();
    let prefix = format!("errorstat_{code}:count=");
    info.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().unwrap())
}

fn the_urls_password_and_acl_user_are_used() {
    let server = RedisServer::start();
    protected(&server, "s3cret");
    let port = server.port();
    let open = |url: &str| RedisTier::open(url).unwrap();
    let password = format!("redis://:s3cret@127.0.0.1:{port}/");
    open(&password).ping().expect("AUTH with the password");
    assert!(shares(open(&password), open(&password)), "password");
    let user = format!("redis://app:app-pass@127.0.0.1:{port}/");
    open(&user).ping().expect("AUTH as the ACL user");
    assert!(shares(open(&user), open(&user)), "ACL user");
}

fn refused_credentials_are_a_clear_error_and_a_local_fallback() {
    // F7: the cache never fails nor hangs because of Redis; the tier backs off instead
    // of asking again on every call.
    let server = RedisServer::start();
    protected(&server, "s3cret");
    let port = server.port();
    // (URL, what the error says, what Redis counts in its error stats)
    for (url, says, code) in [
        (
            format!("redis://:wrong-pass@127.0.0.1:{port}/"),
            "authentication failed",
            "WRONGPASS",
        ),
        (
            format!("redis://app:wrong-pass@127.0.0.1:{port}/"),
            "authentication failed",
            "WRONGPASS",
        ),
        (format!("redis://127.0.0.1:{port}/"), "noauth", "NOAUTH"),
    ] {
        let tier = RedisTier::open(&url).unwrap();
        let err = tier.ping().expect_err(&url);
        let text = err.to_string();
        assert!(
            text.to_lowercase().contains(says),
            "{url}: not a clear error: {text}"
        );
        assert!(
            !text.contains("wrong-pass"),
            "{url}: password shown: {text}"
        );

        let before = errors(&server, code);
        let clock = ManualClock::new();
        let ((), took) = bounded(Duration::from_secs(5), || {
            let (a, b) = (cache(tier.clone(), &clock), cache(tier.clone(), &clock));
            for i in 0..100 {
                assert_eq!(a.get_with(format!("k{i}"), || "a".into()), "a");
                assert_eq!(b.get_with(format!("k{i}"), || "b".into()), "b");
            }
        });
        assert!(took < Duration::from_secs(2), "{url}: {took:?}");
        let asked = errors(&server, code) - before;
        assert!(
            asked <= 10,
            "{url}: asked Redis {asked} times for 200 calls"
        );
    }
}

support::redis_tests! {
    needs_redis: [
        #[cfg(feature = "tls")]
        tls::a_value_is_shared_over_tls_with_a_private_ca,
        #[cfg(feature = "tls")]
        tls::a_server_certificate_from_another_ca_is_refused,
        #[cfg(feature = "tls")]
        tls::a_password_works_over_tls_too,
        the_urls_password_and_acl_user_are_used,
        refused_credentials_are_a_clear_error_and_a_local_fallback,
    ],
    plain: [
        #[cfg(feature = "tls")]
        tls::a_root_ca_needs_tls_and_a_certificate,
    ],
}
