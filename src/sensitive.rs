//! Secret material as a type.
//!
//! Owns the one representation of secret bytes in roomgate: keys, signing secrets,
//! tokens. A [`Secret`] prints as `[REDACTED]`, compares in constant time and is wiped
//! from memory when dropped. It must never grow a `Display` impl or a way to log it.

use std::fmt;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Secret bytes: redacted in `Debug`, constant-time in comparison, zeroized on drop.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The raw bytes, for a MAC key or a cipher. Never log what this returns.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The bytes as UTF-8 text, when they are text (most provider secrets are).
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time equality with presented bytes (shared-token schemes).
    pub fn ct_eq(&self, presented: &[u8]) -> bool {
        self.0.as_slice().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other.expose())
    }
}

impl Eq for Secret {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[REDACTED]");
        assert!(!format!("{:?}", vec![s]).contains("hunter2"));
    }

    #[test]
    fn equality_compares_the_bytes() {
        assert!(Secret::new("abc").ct_eq(b"abc"));
        assert!(!Secret::new("abc").ct_eq(b"abd"));
        assert!(!Secret::new("abc").ct_eq(b"ab"));
    }
}
