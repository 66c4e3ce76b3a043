//! Salesforce: Marketing Cloud ENS (`x-sfmc-ens-signature`) and Data Cloud webhook
//! data-action targets (`x-signature`), both base64 HMAC-SHA256 of the raw body.
//!
//! Provisional: the key is used verbatim as UTF-8, as third-party
//! implementations do, and Data Cloud's "JSON escaping" canonicalisation is not applied.
//! Confirm both with a live delivery. No timestamp is signed.

use super::scheme::{Encoding, Hash, HeaderMac};

pub const SCHEME: HeaderMac = HeaderMac::body(
    &["x-sfmc-ens-signature", "x-signature"],
    Encoding::Base64,
    Hash::Sha256,
);
