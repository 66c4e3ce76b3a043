//! Intercom: `X-Hub-Signature: sha1=<hex HMAC-SHA1(client secret, raw body)>`.
//!
//! The legacy GitHub "hub signature" with SHA-1, so this delegates to
//! [`super::github::SHA1`]. No timestamp is signed.

use super::github;
use super::scheme::HeaderMac;

pub const SCHEME: HeaderMac = github::SHA1;
