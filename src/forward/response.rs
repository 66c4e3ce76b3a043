//! What an h2c service's response becomes before it goes on to the client: roomgate's
//! body type, no hop-by-hop fields, and a `Content-Length` that matches the body sent on.
//! (An HTTP/1.1 response comes out of the pool's reader in that shape already.)
//!
//! Pure: a response head in, a response head out.

use http::{header, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{Body, BodyError};
use crate::pool::head::settle_length;

/// An h2c service's response as roomgate passes it on: its body type, without hop-by-hop
/// fields (RFC 9113 §8.2.2 forbids them, but hyper hands on what came), and with its
/// `Content-Length` settled ([`settle_length`]).
pub(crate) fn cleaned(resp: Response<Incoming>) -> Response<Body> {
    let mut resp = resp.map(|b| b.map_err(BodyError::new).boxed());
    let coded = resp.headers().contains_key(header::TRANSFER_ENCODING);
    settle_length(resp.headers_mut(), coded);
    let names = crate::headers::Names::of(resp.headers());
    names.strip_hop_by_hop(resp.headers_mut(), false);
    resp
}
