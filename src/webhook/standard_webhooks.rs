//! Standard Webhooks (Svix, Clerk, OpenAI, Resend, GitLab signing tokens):
//! `webhook-signature: v1,<base64>[ v1,<base64>…]` = HMAC-SHA256 over
//! `{webhook-id}.{webhook-timestamp}.{raw body}`; the Svix brand sends `svix-*` headers.
//!
//! The key is base64-decode(secret after an optional `whsec_`) — never the literal string
//! (that is Stripe). Like the reference libraries, `|now - ts|` beyond the window is
//! `Stale`. A `whpk_` secret is an Ed25519 public key: then only asymmetric `v1a`
//! signatures are checked, never `v1` (and an HMAC secret never accepts `v1a`). The
//! decoded HMAC key is zeroized. A list of more than `sig::MAX_LIST_ENTRIES` entries is
//! `Invalid` before any MAC; `v1` entries share one MAC per secret, and only the first
//! `v1a` entry is checked (`sig::MAX_ASYMMETRIC_ENTRIES`: each check hashes the body).

use std::time::Duration;

use zeroize::Zeroizing;

use super::sig::{self, Window};
use super::{SignatureError, Verdict, WebhookRequest};
use crate::sensitive::Secret;

/// (id, timestamp, signature) header names of each brand, preferred first.
const BRANDS: [[&str; 3]; 2] = [
    ["webhook-id", "webhook-timestamp", "webhook-signature"],
    ["svix-id", "svix-timestamp", "svix-signature"],
];

/// The (id, timestamp, signature) header names a request is verified with: the first
/// brand whose signature header is present, else the unbranded names.
pub fn brand(headers: &http::HeaderMap) -> [&'static str; 3] {
    BRANDS
        .into_iter()
        .find(|[_, _, sig_name]| headers.contains_key(*sig_name))
        .unwrap_or(BRANDS[0])
}

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret, now: i64, window: Duration) -> Verdict {
    let [id_name, ts_name, sig_name] = brand(req.headers);
    let signatures = sig::header(req, sig_name)?;
    let id = sig::header(req, id_name)?;
    let ts = sig::header(req, ts_name)?;
    sig::check_window(sig::parse_unix(ts)?, 1, now, window, Window::Both)?;
    let signed: [&[u8]; 5] = [id.as_bytes(), b".", ts.as_bytes(), b".", req.body];
    let entries = sig::capped(signatures.split(' '))?;
    match signing_key(secret)? {
        Key::Hmac(key) => {
            let v1 = entries.iter().filter_map(|item| item.strip_prefix("v1,"));
            sig::list_matches(v1, sig::decode_base64, || sig::sha256_tag(&key, &signed))
        }
        Key::Ed25519(public) => {
            let v1a = entries
                .iter()
                .filter_map(|item| item.strip_prefix("v1a,"))
                .take(sig::MAX_ASYMMETRIC_ENTRIES);
            let message = signed.concat();
            sig::any_matches(v1a, sig::decode_base64, |expected| {
                sig::ed25519_matches(&public, &[&message], expected)
            })
        }
    }
}

enum Key {
    /// base64-decode of the secret after an optional `whsec_` prefix.
    Hmac(Zeroizing<Vec<u8>>),
    /// base64-decode of the public key after `whpk_`.
    Ed25519(Vec<u8>),
}

fn signing_key(secret: &Secret) -> Result<Key, SignatureError> {
    let text = secret.expose_str().ok_or(SignatureError::Invalid)?;
    if let Some(public) = text.strip_prefix("whpk_") {
        return sig::decode_base64(public).map(Key::Ed25519);
    }
    let encoded = text.strip_prefix("whsec_").unwrap_or(text);
    sig::decode_base64(encoded).map(|key| Key::Hmac(Zeroizing::new(key)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post, secs, T, URL};

    // Reference-library sign test (identical in all nine libraries).
    const KAT_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const KAT_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const KAT_TS: &str = "1614265330";
    const KAT_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const KAT_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // testdata/make_vectors.py: base64 HMAC-SHA256(b64decode("MfKQ…Sw"),
    // "msg_2Lz.1700000000." + BODY).
    const BODY: &[u8] = br#"{"type":"user.created"}"#;
    const SIG: &str = "v1,2Vu/FN/RuCqUk/Z6CFYcSWv4SLRLTcXBsNdOnB0/ZhM=";

    fn check(
        brand: &str,
        id: &str,
        ts: &str,
        sig: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        let h = headers(&[
            (&format!("{brand}-id"), id),
            (&format!("{brand}-timestamp"), ts),
            (&format!("{brand}-signature"), sig),
        ]);
        verify(&post(&h, URL, body), &Secret::new(secret), now, secs(300))
    }

    fn constructed(
        brand: &str,
        sig: &str,
        body: &[u8],
        secret: &str,
        now: i64,
    ) -> Result<(), SignatureError> {
        check(brand, "msg_2Lz", "1700000000", sig, body, secret, now)
    }

    #[test]
    fn reference_library_vector_verifies() {
        let now = 1_614_265_330;
        assert_eq!(
            check("webhook", KAT_ID, KAT_TS, KAT_SIG, KAT_BODY, KAT_SECRET, now),
            Ok(())
        );
    }

    #[test]
    fn svix_header_names_verify() {
        assert_eq!(constructed("svix", SIG, BODY, KAT_SECRET, T), Ok(()));
    }

    #[test]
    fn secret_without_the_whsec_prefix_verifies() {
        let bare = &KAT_SECRET["whsec_".len()..];
        assert_eq!(constructed("webhook", SIG, BODY, bare, T), Ok(()));
    }

    #[test]
    fn any_signature_in_the_list_may_match() {
        let list = format!("v1a,AAAA v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SIG}");
        assert_eq!(constructed("webhook", &list, BODY, KAT_SECRET, T), Ok(()));
    }

    // testdata/make_vectors.py: Ed25519 seed 32×0x05; v1a signs "msg_2Lz.1700000000." + BODY.
    const WHPK: &str = "whpk_bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=";
    const V1A: &str = "v1a,f7lyRA8cZJierguQIDRagyPGAe+Lc+kx3ULobFWGSkaeJHoW86el1zn+ZvpTgxNf+cfTjByad+ERv9AmQtO4Ag==";

    #[test]
    fn asymmetric_v1a_signature_verifies_with_a_whpk_key() {
        let list = format!("{SIG} {V1A}");
        assert_eq!(constructed("webhook", &list, BODY, WHPK, T), Ok(()));
    }

    #[test]
    fn v1a_over_a_tampered_body_is_invalid() {
        assert_eq!(
            constructed("webhook", V1A, b"{}", WHPK, T),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: a public key never validates an HMAC `v1` (anyone could make one).
    #[test]
    fn whpk_key_does_not_accept_v1_hmac_signatures() {
        assert_eq!(
            constructed("webhook", SIG, BODY, WHPK, T),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn hmac_secret_does_not_accept_v1a_signatures() {
        assert_eq!(
            constructed("webhook", V1A, BODY, KAT_SECRET, T),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: the literal whsec_ string (Stripe's convention) is not the key.
    #[test]
    fn secret_that_is_not_base64_is_invalid() {
        assert_eq!(
            constructed("webhook", SIG, BODY, "whsec_not base64!", T),
            Err(SignatureError::Invalid)
        );
    }
}
