//! TLS termination with rustls.
//!
//! Owns the choice of certificate by SNI using the names inside each certificate (wildcards
//! included), and the protocol policy: TLS 1.2 and 1.3 only, ALPN `h2` and `http/1.1`.
//! Whether a request's Host fits the certificate its connection was made for is answered
//! here too; the handshake itself runs in the connection task (server.rs) under a timeout.
//! The certificates and keys are read and checked with the config (`config::certs`), never
//! here, so that `check` and `serve` accept the same files.

use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

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

/// Accepts TLS connections with the configured certificates (loaded and checked by
/// `config::certs` when the config was).
pub struct TlsAcceptor {
    acceptor: tokio_rustls::TlsAcceptor,
    resolver: Arc<SniResolver>,
}

impl TlsAcceptor {
    pub fn from_config(config: &Config) -> Result<TlsAcceptor, TlsError> {
        let Some(tls) = &config.file.tls else {
            return Err(TlsError::Config("no tls block".into()));
        };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
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
        Ok(TlsAcceptor {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server)),
            resolver,
        })
    }

    /// Complete a handshake; returns the stream and the server name the client asked for.
    pub async fn accept(
        &self,
        stream: TcpStream,
    ) -> std::io::Result<(TlsStream<TcpStream>, Option<String>)> {
        let tls = self.acceptor.accept(stream).await?;
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
