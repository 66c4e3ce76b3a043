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

    /// True when there is nothing to keep secret: no bytes, or only ASCII whitespace
    /// (what a `{file:}` holding a lone newline or an unset template leaves). Such a value
    /// is never used as a key or a token.
    pub fn is_blank(&self) -> bool {
        self.0.iter().all(u8::is_ascii_whitespace)
    }

    /// Constant-time equality with presented bytes (shared-token schemes). An empty secret
    /// equals nothing, not even an empty presentation: an unset secret must never admit
    /// a request that sends an empty header.
    pub fn ct_eq(&self, presented: &[u8]) -> bool {
        !self.0.is_empty() && bool::from(self.0.as_slice().ct_eq(presented))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    /// Value equality (reflexive, unlike [`Secret::ct_eq`] on an empty secret), in
    /// constant time.
    fn eq(&self, other: &Self) -> bool {
        self.0.as_slice().ct_eq(other.expose()).into()
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

    // Security property: an empty secret authenticates nobody, even a request that
    // presents an empty token.
    #[test]
    fn an_empty_secret_equals_nothing_not_even_an_empty_token() {
        assert!(!Secret::new("").ct_eq(b""));
        assert!(!Secret::new("").ct_eq(b"x"));
    }

    #[test]
    fn a_value_of_only_whitespace_is_blank() {
        assert!(Secret::new("").is_blank());
        assert!(Secret::new(" \t\r\n").is_blank());
        assert!(!Secret::new(" k ").is_blank());
    }
}
