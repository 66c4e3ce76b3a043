//! Dropbox: `X-Dropbox-Signature: <hex HMAC-SHA256(app secret, raw body)>`.
//!
//! The notification body only lists accounts that changed, and no timestamp is signed.
//! The `GET ?challenge=` that enables an endpoint is answered in `handshake`. This module
//! must not look at anything but the header and the raw body.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac =
    HeaderMac::body(&["x-dropbox-signature"], Encoding::Hex, Hash::Sha256);
