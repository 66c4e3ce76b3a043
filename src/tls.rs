//! TLS termination with rustls.
//!
//! Owns the choice of certificate by SNI using the names inside each certificate (wildcards
//! included), and the protocol policy: TLS 1.2 and 1.3 only, ALPN `h2` and `http/1.1`,
//! and the server's order of cipher suites ([`rank`]): AES-128-GCM first, which CPUs run
//! in hardware and whose SHA-256 key schedule they accelerate too, where SHA-384 has no
//! instruction on most of them; a client that lists ChaCha20-Poly1305 first, the sign of a
//! CPU without AES instructions, keeps its own order. Sessions resume from stateless
//! tickets.
//! Whether a request's Host fits the certificate its connection was made for is answered
//! here too; the handshake itself runs in the connection task (server.rs) under a timeout.
//! The certificates and keys are read and checked with the config (`config::certs`), never
//! here, so that `check` and `serve` accept the same files.

use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use rustls::server::{Acceptor, ClientHello, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CipherSuite, ServerConfig, SupportedCipherSuite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// One loaded certificate with its key.
#[derive(Debug)]
struct Loaded {
    key: Arc<CertifiedKey>,
}

impl Loaded {
    /// True when the certificate is valid for `name` (exact or wildcard SAN).
    fn covers(&self, name: &str) -> bool {
        let Some(end_entity) = self.key.cert.first() else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let Ok(server_name) = ServerName::try_from(name) else {
            return false;
        };
        cert.verify_is_valid_for_subject_name(&server_name).is_ok()
    }
}

/// Picks a certificate by SNI.
#[derive(Debug)]
struct SniResolver {
    certs: Vec<Loaded>,
    default: Option<usize>,
}

impl SniResolver {
    fn index_for(&self, sni: Option<&str>) -> Option<usize> {
        match sni {
            Some(name) => self
                .certs
                .iter()
                .position(|c| c.covers(name))
                .or(self.default),
            None => self.default,
        }
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.index_for(hello.server_name())
            .map(|i| Arc::clone(&self.certs[i].key))
    }
}

/// Where a cipher suite stands in the server's order: AES-128-GCM, then
/// ChaCha20-Poly1305, then the rest (AES-256-GCM), for TLS 1.3 and 1.2 alike.
fn rank(suite: CipherSuite) -> u8 {
    if is_chacha(suite) {
        return 1;
    }
    match suite {
        CipherSuite::TLS13_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        | CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 0,
        _ => 2,
    }
}

fn is_chacha(suite: CipherSuite) -> bool {
    matches!(
        suite,
        CipherSuite::TLS13_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
            | CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
    )
}

/// The session ticket key: made once per process and replaced every 6 hours by the
/// ticketer itself, so tickets outlive config reloads (every reload builds a new
/// [`TlsAcceptor`]).
fn ticketer() -> Result<Arc<dyn ProducesTickets>, TlsError> {
    static TICKETER: OnceLock<Arc<dyn ProducesTickets>> = OnceLock::new();
    if let Some(made) = TICKETER.get() {
        return Ok(Arc::clone(made));
    }
    let made = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| TlsError::Config(format!("making the session ticket key: {e}")))?;
    Ok(Arc::clone(TICKETER.get_or_init(|| made)))
}

/// aws-lc-rs, its cipher suites in the server's order.
fn provider() -> rustls::crypto::CryptoProvider {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| rank(s.suite()));
    provider
}

/// Whether the first of the client's suites that the server serves is ChaCha20-Poly1305.
fn prefers_chacha(offered: &[CipherSuite], served: &[SupportedCipherSuite]) -> bool {
    offered
        .iter()
        .find(|s| served.iter().any(|x| x.suite() == **s))
        .is_some_and(|s| is_chacha(*s))
}

/// Accepts TLS connections with the configured certificates (loaded and checked by
/// `config::certs` when the config was).
pub struct TlsAcceptor {
    /// Cipher suites chosen in the server's order ([`rank`]).
    server_order: Arc<ServerConfig>,
    /// The same, in the client's order: for clients that prefer ChaCha20-Poly1305.
    client_order: Arc<ServerConfig>,
    resolver: Arc<SniResolver>,
}

impl TlsAcceptor {
    pub fn from_config(config: &Config) -> Result<TlsAcceptor, TlsError> {
        let Some(tls) = &config.file.tls else {
            return Err(TlsError::Config("no tls block".into()));
        };
        let provider = Arc::new(provider());
        // Read, parsed and matched with their keys when the config was loaded.
        let certs = config
            .certificates
            .iter()
            .map(|key| Loaded {
                key: Arc::clone(key),
            })
            .collect();
        let resolver = Arc::new(SniResolver {
            certs,
            default: tls.default_certificate,
        });
        let mut server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // Stateless session tickets: a client resumes however many others came since,
        // where an in-memory cache of sessions would hold the last few hundred.
        server.ticketer = ticketer()?;
        // Both orders share the ticket key, so a client resumes with either.
        let client_order = Arc::new(server.clone());
        server.ignore_client_order = true;
        Ok(TlsAcceptor {
            server_order: Arc::new(server),
            client_order,
            resolver,
        })
    }

    /// Complete a handshake; returns the stream and the server name the client asked for.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<String>)> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
        let served = &self.server_order.crypto_provider().cipher_suites;
        let config = if prefers_chacha(start.client_hello().cipher_suites(), served) {
            &self.client_order
        } else {
            &self.server_order
        };
        let tls = start.into_stream(Arc::clone(config)).await?;
        let sni = tls.get_ref().1.server_name().map(str::to_ascii_lowercase);
        Ok((tls, sni))
    }

    /// True when `host` may be served on a connection made for `sni`: both resolve to the
    /// same certificate and that certificate covers `host`.
    pub fn host_fits(&self, host: &str, sni: Option<&str>) -> bool {
        if sni == Some(host) {
            return true;
        }
        let Some(i) = self.resolver.index_for(sni) else {
            return false;
        };
        self.resolver.certs[i].covers(host)
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsAcceptor")
            .field("certificates", &self.resolver.certs.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served() -> Vec<SupportedCipherSuite> {
        provider().cipher_suites
    }

    /// The served suites whose names start with `prefix`, in the server's order.
    fn in_order(prefix: &str) -> Vec<CipherSuite> {
        served()
            .iter()
            .map(|s| s.suite())
            .filter(|s| format!("{s:?}").starts_with(prefix))
            .collect()
    }

    #[test]
    fn the_server_order_puts_aes_128_first_and_aes_256_last_in_each_version() {
        assert_eq!(
            in_order("TLS13_"),
            [
                CipherSuite::TLS13_AES_128_GCM_SHA256,
                CipherSuite::TLS13_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS13_AES_256_GCM_SHA384,
            ]
        );
        assert_eq!(
            in_order("TLS_ECDHE_ECDSA_"),
            [
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
                CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            ]
        );
    }

    #[test]
    fn a_client_prefers_chacha_when_it_is_the_first_suite_served() {
        let served = served();
        let chacha = CipherSuite::TLS13_CHACHA20_POLY1305_SHA256;
        let aes = CipherSuite::TLS13_AES_256_GCM_SHA384;
        // Suites the server does not serve are passed over.
        let unknown = CipherSuite::Unknown(0x1305);
        assert!(prefers_chacha(&[unknown, chacha, aes], &served));
        assert!(!prefers_chacha(&[aes, chacha], &served));
        assert!(!prefers_chacha(&[], &served));
        assert!(prefers_chacha(
            &[CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256],
            &served
        ));
    }
}
