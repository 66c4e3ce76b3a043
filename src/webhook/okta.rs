//! Okta event hooks: the configured `Authorization` header value must equal the secret,
//! compared in constant time.
//!
//! Nothing is signed: body integrity relies on TLS. Also used by the one-time
//! verification GET in `handshake`. Must not compare with `==` or log the value.

use super::scheme::SharedToken;

pub const SCHEME: SharedToken = SharedToken {
    header: "authorization",
};
