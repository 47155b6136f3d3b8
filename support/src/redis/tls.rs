//! Test support: a certificate authority made on the spot (rcgen) and a real
//! `redis-server` that speaks only TLS (`--port 0 --tls-port P`), with a certificate for
//! 127.0.0.1 signed by a given CA; killed on drop, its files removed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::{binary, free_port, holds_within, RedisServer, READY_WITHIN};

/// A certificate authority that signs server certificates for 127.0.0.1.
pub struct TestCa {
    /// The CA's certificate, PEM: what a client trusts.
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate and its key (PEM) for 127.0.0.1, signed by this CA.
    fn server_certificate(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A `redis-server` that accepts TLS connections only.
pub struct TlsRedis {
    server: RedisServer,
    dir: PathBuf,
}

impl TlsRedis {
    /// Starts a server whose certificate `ca` signed, with `extra` arguments
    /// (e.g. `--requirepass`), and waits (bounded) until it answers a TLS PING.
    pub fn start(ca: &TestCa, extra: &[&str]) -> TlsRedis {
        let dir = std::env::temp_dir().join(format!(
            "dogpile-tls-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("cannot create the server's directory");
        let (cert, key) = ca.server_certificate();
        let (cert_file, key_file, ca_file) = (
            dir.join("server.pem"),
            dir.join("server.key"),
            dir.join("ca.pem"),
        );
        std::fs::write(&cert_file, cert).unwrap();
        std::fs::write(&key_file, key).unwrap();
        std::fs::write(&ca_file, &ca.pem).unwrap();
        for _attempt in 0..5 {
            let port = free_port();
            let child = Command::new(binary())
                .args(["--port", "0", "--tls-port", &port.to_string()])
                .args(["--bind", "127.0.0.1"])
                .arg("--tls-cert-file")
                .arg(&cert_file)
                .arg("--tls-key-file")
                .arg(&key_file)
                .arg("--tls-ca-cert-file")
                .arg(&ca_file)
                .args(["--tls-auth-clients", "no"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", binary()));
            let mut server = RedisServer {
                child: Some(child),
                port,
            };
            if holds_within(READY_WITHIN, || answers(port, &ca.pem)) {
                return TlsRedis { server, dir };
            }
            // Another process took the port between probe and bind: try another.
            server.kill();
        }
        let _ = std::fs::remove_dir_all(&dir);
        panic!("a TLS redis-server did not start");
    }

    /// `rediss://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/", self.server.port())
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        self.server.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the server on `port` answers PING (or asks for a password) over TLS,
/// trusting `ca`.
fn answers(port: u16, ca: &str) -> bool {
    let certificates = ::redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.as_bytes().to_vec()),
    };
    let url = format!("rediss://127.0.0.1:{port}/");
    let Ok(client) = ::redis::Client::build_with_tls(url, certificates) else {
        return false;
    };
    let Ok(mut con) = client.get_connection_with_timeout(Duration::from_millis(500)) else {
        return false;
    };
    let _ = con.set_read_timeout(Some(Duration::from_millis(500)));
    match ::redis::cmd("PING").query::<String>(&mut con) {
        Ok(_) => true,
        Err(err) => err.code() == Some("NOAUTH"),
    }
}
