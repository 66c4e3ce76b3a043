//! What the listener knows of the connection a request came on, handed down to the
//! request pipeline and the sign-in handlers as a plain value.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http::HeaderValue;

/// The facts of one client connection.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    /// `peer`'s address as an `X-Forwarded-For` value, formatted once.
    pub peer_value: HeaderValue,
    pub tls: bool,
    /// The port of the listener the connection came in on (0 when unknown).
    pub local_port: u16,
    /// The TLS server name the client asked for.
    pub sni: Option<String>,
    /// The acceptor of a TLS connection, to check that Host fits its certificate.
    pub tls_acceptor: Option<Arc<crate::tls::TlsAcceptor>>,
    /// The first host checked against the certificate, and the answer: the requests of a
    /// connection nearly always name one host, and the check parses the certificate.
    pub checked_host: OnceLock<(Box<str>, bool)>,
}

impl ConnInfo {
    /// True when a request for `host` (canonical) may be served on this connection: any
    /// host on plain HTTP; on TLS, a host the connection's certificate covers (see
    /// [`crate::tls::TlsAcceptor::host_fits`]).
    pub fn host_fits(&self, host: &str) -> bool {
        let Some(tls) = &self.tls_acceptor else {
            return true;
        };
        if let Some((checked, fits)) = self.checked_host.get() {
            if **checked == *host {
                return *fits;
            }
        }
        let fits = tls.host_fits(host, self.sni.as_deref());
        // Only the first host is kept; another is checked each time.
        let _ = self.checked_host.set((host.into(), fits));
        fits
    }
}
