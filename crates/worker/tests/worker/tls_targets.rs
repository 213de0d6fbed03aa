//! An https target for the certificate-expiry tests: a server on 127.0.0.1 whose certificate is
//! issued by a private CA made for the test (the worker trusts it through
//! `HELPDESK_EGRESS_CA_FILE`) and can be swapped at run time, as a renewal would.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::targets::{Mode, answer};

/// A certificate authority of the test's own.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// Its certificate, for the worker's trust store.
    pub pem: String,
}

impl TestCa {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, "helpdesk test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).expect("CA certificate");
        Self { issuer: Issuer::new(params, key), pem: certificate.pem() }
    }

    /// Writes the CA certificate to a file of its own, for `HELPDESK_EGRESS_CA_FILE`.
    pub fn write_pem(&self) -> String {
        let path = std::env::temp_dir().join(format!("helpdesk-test-ca-{}.pem", uuid::Uuid::now_v7()));
        std::fs::write(&path, &self.pem).expect("write the CA file");
        path.to_string_lossy().into_owned()
    }

    /// A server configuration for 127.0.0.1 with a certificate valid from yesterday to the day
    /// of `not_after` (certificates carry whole days here).
    pub fn server(&self, not_after: DateTime<Utc>) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
        params.distinguished_name.push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let yesterday = Utc::now() - TimeDelta::days(1);
        params.not_before = date_time_ymd(yesterday.year(), day_part(yesterday.month()), day_part(yesterday.day()));
        params.not_after = date_time_ymd(not_after.year(), day_part(not_after.month()), day_part(not_after.day()));
        let certificate = params.signed_by(&key, &self.issuer).expect("server certificate");
        let chain = vec![CertificateDer::from(certificate.der().to_vec())];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .expect("server config");
        Arc::new(config)
    }
}

fn day_part(value: u32) -> u8 {
    u8::try_from(value).expect("a month or a day")
}

/// The instant a certificate made by [`TestCa::server`] for `not_after` expires.
pub fn expiry_of(not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_after.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc()
}

pub struct TlsTarget {
    pub address: SocketAddr,
    config: Arc<Mutex<Arc<ServerConfig>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsTarget {
    /// An up site with the keyword, serving `config`'s certificate.
    pub async fn start(config: Arc<ServerConfig>) -> Self {
        let listener = TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let config = Arc::new(Mutex::new(config));
        let serving = config.clone();
        let task = tokio::spawn(async move {
            let (_keep, modes) = watch::channel(Mode::Up);
            while let Ok((stream, _)) = listener.accept().await {
                let current = serving.lock().expect("config").clone();
                let modes = modes.clone();
                tokio::spawn(async move {
                    if let Ok(stream) = TlsAcceptor::from(current).accept(stream).await {
                        answer(stream, modes).await;
                    }
                });
            }
        });
        Self { address, config, task }
    }

    pub fn url(&self) -> String {
        format!("https://{}/", self.address)
    }

    /// Serves another certificate from the next connection on (a renewal).
    pub fn renew(&self, config: Arc<ServerConfig>) {
        *self.config.lock().expect("config") = config;
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}
