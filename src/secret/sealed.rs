//! Sealing secret values for storage: AES-256-GCM with a random 96-bit nonce per value.
//!
//! Owns the encryption of the redis backend's values at rest. The associated data binds a
//! ciphertext to its place (`room\0identity\0id`), so a value copied to another key does
//! not decrypt. It must never reuse a nonce on purpose, never return a partial plaintext,
//! and never say more about a failure than "it did not open".

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::sensitive::Secret;

/// Length of an AES-256 key in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a GCM nonce in bytes.
pub const NONCE_LEN: usize = 12;

/// The key that seals and opens stored secret values.
#[derive(Clone)]
pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey([REDACTED])")
    }
}

/// A sealed value: the nonce and the ciphertext with its 16-byte tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: [u8; NONCE_LEN],
    pub ciphertext: Vec<u8>,
}

/// Why a value could not be opened. Deliberately without detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenError;

/// The associated data for a value's place: `room\0identity\0id`.
pub fn associated_data(room: &str, identity: &str, id: &str) -> Vec<u8> {
    [room.as_bytes(), identity.as_bytes(), id.as_bytes()].join(&0u8)
}

impl SealingKey {
    /// A key from exactly 32 bytes (`config.secrets_key`, already base64-decoded).
    pub fn new(key: &Secret) -> Result<SealingKey, String> {
        if key.len() != KEY_LEN {
            return Err(format!(
                "the secrets key is {} bytes; exactly {KEY_LEN} are required \
                 (head -c32 /dev/urandom | base64)",
                key.len()
            ));
        }
        Aes256Gcm::new_from_slice(key.expose())
            .map(SealingKey)
            .map_err(|_| "the secrets key is not a valid AES-256 key".to_owned())
    }

    /// Encrypt `plaintext` under a fresh random nonce, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &Secret) -> Result<Sealed, String> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .0
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.expose(),
                    aad,
                },
            )
            .map_err(|_| "encryption failed".to_owned())?;
        let mut n = [0u8; NONCE_LEN];
        n.copy_from_slice(nonce.as_slice());
        Ok(Sealed {
            nonce: n,
            ciphertext,
        })
    }

    /// Decrypt and authenticate; fails for a wrong key, a wrong `aad` or any tampering.
    pub fn open(&self, aad: &[u8], sealed: &Sealed) -> Result<Secret, OpenError> {
        self.0
            .decrypt(
                Nonce::from_slice(&sealed.nonce),
                Payload {
                    msg: &sealed.ciphertext,
                    aad,
                },
            )
            .map(Secret::new)
            .map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::new(&Secret::new(vec![byte; KEY_LEN])).unwrap()
    }

    #[test]
    fn a_sealed_value_opens_to_the_same_bytes() {
        let k = key(7);
        let aad = associated_data("acme", "webhook-worker", "stripe");
        let sealed = k.seal(&aad, &Secret::new("whsec_abc")).unwrap();
        assert!(!sealed
            .ciphertext
            .windows(b"whsec_abc".len())
            .any(|w| w == b"whsec_abc"));
        assert_eq!(k.open(&aad, &sealed).unwrap(), Secret::new("whsec_abc"));
    }

    /// A ciphertext moved to another (room, identity, id) does not decrypt.
    #[test]
    fn a_value_moved_to_another_key_does_not_open() {
        let k = key(7);
        let sealed = k
            .seal(
                &associated_data("acme", "webhook-worker", "stripe"),
                &Secret::new("v"),
            )
            .unwrap();
        for (room, identity, id) in [
            ("other", "webhook-worker", "stripe"),
            ("acme", "other", "stripe"),
            ("acme", "webhook-worker", "github"),
            ("acme\0webhook", "worker", "stripe"),
        ] {
            assert_eq!(
                k.open(&associated_data(room, identity, id), &sealed),
                Err(OpenError)
            );
        }
    }

    #[test]
    fn a_wrong_key_or_a_flipped_bit_does_not_open() {
        let aad = associated_data("acme", "w", "s");
        let sealed = key(7).seal(&aad, &Secret::new("v")).unwrap();
        assert_eq!(key(8).open(&aad, &sealed), Err(OpenError));
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(key(7).open(&aad, &tampered), Err(OpenError));
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let k = key(7);
        let a = k.seal(b"x", &Secret::new("v")).unwrap();
        let b = k.seal(b"x", &Secret::new("v")).unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused() {
        assert!(SealingKey::new(&Secret::new(vec![0u8; 16])).is_err());
        assert!(SealingKey::new(&Secret::new(vec![0u8; 33])).is_err());
    }
}
