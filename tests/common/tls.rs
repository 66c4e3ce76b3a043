//! Certificates made at test time (rcgen) and a rustls client that trusts them.
//!
//! A test CA issues two server certificates: `a` (ECDSA P-256) for `a.test` and
//! `*.apps.test`, and `b` (RSA 2048, from a fixed test-only key) for `b.test`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A test-only RSA key (never used outside the tests).
const RSA_TEST_KEY: &str = include_str!("rsa_test_key.pem");

/// One issued certificate, written to disk as a PEM chain and a PEM key.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

pub struct TestCerts {
    pub ca: CertificateDer<'static>,
    /// ECDSA: `a.test`, `*.apps.test`.
    pub a: Issued,
    /// RSA: `b.test`.
    pub b: Issued,
}

/// Issue the test certificates into `dir`.
pub fn issue(dir: &Path) -> TestCerts {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "roomgate test CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");

    let write = |name: &str, names: &[&str], key: KeyPair| {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        let cert = params.signed_by(&key, &ca, &ca_key).expect("sign");
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), ca.pem())).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        Issued {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    };
    let a = write(
        "a",
        &["a.test", "*.apps.test"],
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("ecdsa key"),
    );
    let b = write(
        "b",
        &["b.test"],
        KeyPair::from_pem_and_sign_algo(RSA_TEST_KEY, &rcgen::PKCS_RSA_SHA256).expect("rsa key"),
    );
    TestCerts {
        ca: ca.der().clone(),
        a,
        b,
    }
}

/// A client trusting the test CA, offering `alpn` and the given TLS versions.
pub fn client_config(
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let suites = rustls::crypto::aws_lc_rs::default_provider().cipher_suites;
    client_config_offering(ca, alpn, versions, &suites)
}

/// [`client_config`] offering `suites`, in that order of preference.
pub fn client_config_offering(
    ca: &CertificateDer<'static>,
    alpn: &[&[u8]],
    versions: &[&'static SupportedProtocolVersion],
    suites: &[SupportedCipherSuite],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).expect("trust the test CA");
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::CryptoProvider {
            cipher_suites: suites.to_vec(),
            ..rustls::crypto::aws_lc_rs::default_provider()
        }))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Both TLS versions roomgate accepts.
pub fn all_versions() -> Vec<&'static SupportedProtocolVersion> {
    vec![&rustls::version::TLS13, &rustls::version::TLS12]
}

/// Connect with `name` as the verified server name (and as SNI unless the config
/// disables SNI).
pub async fn connect(
    addr: SocketAddr,
    name: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
}

/// The end-entity certificate the server presented.
pub fn peer_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .expect("peer certificate")
        .clone()
        .into_owned()
}

/// True when `cert`'s subject alternative names cover `name`.
pub fn covers(cert: &CertificateDer<'_>, name: &str) -> bool {
    let ee = webpki::EndEntityCert::try_from(cert).expect("parse certificate");
    let name = ServerName::try_from(name.to_owned()).expect("name");
    ee.verify_is_valid_for_subject_name(&name).is_ok()
}
