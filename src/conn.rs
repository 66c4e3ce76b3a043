//! What the listener knows of the connection a request came on, handed down to the
//! request pipeline and the sign-in handlers as a plain value.

use std::net::SocketAddr;
use std::sync::Arc;

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
}
