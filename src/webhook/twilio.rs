//! Twilio: `X-Twilio-Signature` = base64 HMAC-SHA1(auth token, URL + signed params).
//!
//! Form POSTs sign the full public URL followed by every POST parameter, sorted by name
//! then value, as `name+value` (URL-decoded, no separators). JSON webhooks instead carry
//! `bodySHA256=<hex sha256(body)>` in the URL: the URL alone is signed and the body must
//! hash to that value. Like the SDKs, the URL is tried as given and with its default port
//! (`:443`/`:80`) added or removed. This module must not accept a non-form body whose
//! bytes are not covered by a `bodySHA256` parameter. A form of more than
//! [`MAX_FORM_PARAMS`] parameters is `Invalid` before it is decoded or sorted.

use percent_encoding::percent_decode;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{sig, SignatureError, WebhookRequest};
use crate::sensitive::Secret;

/// The most form parameters a signed Twilio POST may hold (Twilio sends a few dozen).
pub const MAX_FORM_PARAMS: usize = 1000;

pub fn verify(req: &WebhookRequest<'_>, secret: &Secret) -> Result<(), SignatureError> {
    let expected = sig::decode_base64(sig::header(req, "x-twilio-signature")?)?;
    let key = secret.expose();
    let urls = url_variants(req.url);
    if let Some(body_hash) = query_param(req.url, "bodySHA256") {
        let claimed = sig::decode_hex(&body_hash)?;
        let actual = Sha256::digest(req.body);
        let body_ok: bool = actual.as_slice().ct_eq(&claimed).into();
        let url_ok = urls
            .iter()
            .any(|url| sig::sha1_matches(key, &[url.as_bytes()], &expected));
        return sig::verdict(body_ok & url_ok);
    }
    if !req.body.is_empty() && !is_form(req) {
        return Err(SignatureError::Invalid);
    }
    if req
        .body
        .split(|&b| b == b'&')
        .nth(MAX_FORM_PARAMS)
        .is_some()
    {
        return Err(SignatureError::Invalid);
    }
    let mut params = form_pairs(req.body);
    params.sort();
    let all = concat(&params);
    // twilio-python de-duplicates identical repeated values; twilio-node does not.
    params.dedup();
    let deduplicated = concat(&params);
    let tails: &[&[u8]] = if all == deduplicated {
        &[&all]
    } else {
        &[&all, &deduplicated]
    };
    let matched = urls.iter().any(|url| {
        tails
            .iter()
            .any(|tail| sig::sha1_matches(key, &[url.as_bytes(), tail], &expected))
    });
    sig::verdict(matched)
}

fn is_form(req: &WebhookRequest<'_>) -> bool {
    match req.headers.get(http::header::CONTENT_TYPE) {
        None => true,
        Some(value) => value
            .to_str()
            .map(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            })
            .unwrap_or(false),
    }
}

/// `application/x-www-form-urlencoded` decoding of one component (`+` is a space).
fn form_decode(component: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = component
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

fn form_pairs(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    body.split(|&b| b == b'&')
        .filter(|item| !item.is_empty())
        .map(|item| match item.iter().position(|&b| b == b'=') {
            Some(eq) => (form_decode(&item[..eq]), form_decode(&item[eq + 1..])),
            None => (form_decode(item), Vec::new()),
        })
        .collect()
}

fn concat(params: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in params {
        out.extend_from_slice(name);
        out.extend_from_slice(value);
    }
    out
}

/// A query parameter of `url`, form-decoded.
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    form_pairs(query.as_bytes())
        .into_iter()
        .find(|(k, _)| k == name.as_bytes())
        .and_then(|(_, v)| String::from_utf8(v).ok())
}

/// The URL as given, plus the same URL with its default port toggled.
fn url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return out,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_port = &authority[host_start..];
    let port_colon = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let prefix = format!("{scheme}://{}", &authority[..host_start]);
    match port_colon {
        Some(colon) if &host_port[colon + 1..] == default_port => {
            out.push(format!("{prefix}{}{tail}", &host_port[..colon]));
        }
        Some(_) => {}
        None => out.push(format!("{prefix}{host_port}:{default_port}{tail}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::testkit::{headers, post};

    // twilio-python tests/unit/test_request_validator.py.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM: &[u8] = b"CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
    const FORM_SIG: &str = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";
    const PORT_443_SIG: &str = "kvajT1Ptam85bY51eRf/AJRuM3w=";
    const JSON_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
    const JSON_BODY: &[u8] = br#"{"property": "value", "boolean": true}"#;
    const JSON_SIG: &str = "a9nBmqA0ju/hNViExpshrM61xv4=";
    const DUP_BODY: &[u8] = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234";
    const DUP_SIG: &str = "IK+Dwps556ElfBT0I3Rgjkr1wJU=";
    // testdata/make_vectors.py: base64 HMAC-SHA1("12345",
    // "http://mycompany.com:80/sms" + "Bodyhi there" + "From+15005550006").
    const HTTP_80_SIG: &str = "50f0jVrR8slM8OHIAASy070mBFY=";

    fn check(
        url: &str,
        sig: &str,
        content_type: &str,
        body: &[u8],
        token: &str,
    ) -> Result<(), SignatureError> {
        let h = headers(&[("x-twilio-signature", sig), ("content-type", content_type)]);
        verify(&post(&h, url, body), &Secret::new(token))
    }

    const FORM_CT: &str = "application/x-www-form-urlencoded";

    #[test]
    fn sdk_vector_signed_with_port_443_verifies_against_the_url_without_it() {
        assert_eq!(check(URL, PORT_443_SIG, FORM_CT, FORM, TOKEN), Ok(()));
    }

    #[test]
    fn signature_without_port_verifies_against_a_url_with_port_443() {
        let url = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
        assert_eq!(check(url, FORM_SIG, FORM_CT, FORM, TOKEN), Ok(()));
        assert_eq!(check(url, PORT_443_SIG, FORM_CT, FORM, TOKEN), Ok(()));
    }

    #[test]
    fn signature_with_port_80_verifies_against_a_plain_http_url() {
        let body = b"Body=hi+there&From=%2B15005550006";
        assert_eq!(
            check(
                "http://mycompany.com/sms",
                HTTP_80_SIG,
                FORM_CT,
                body,
                TOKEN
            ),
            Ok(())
        );
    }

    #[test]
    fn a_non_default_port_is_not_toggled() {
        let url = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
        assert_eq!(
            check(url, FORM_SIG, FORM_CT, FORM, TOKEN),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn sdk_json_body_sha256_vector_verifies() {
        assert_eq!(
            check(JSON_URL, JSON_SIG, "application/json", JSON_BODY, TOKEN),
            Ok(())
        );
    }

    // Security property: a swapped JSON body is caught by the body hash even though the
    // URL signature still matches.
    #[test]
    fn json_body_not_matching_body_sha256_is_invalid() {
        assert_eq!(
            check(
                JSON_URL,
                JSON_SIG,
                "application/json",
                br#"{"property": "evil"}"#,
                TOKEN
            ),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn sdk_duplicate_params_vector_verifies() {
        assert_eq!(check(URL, DUP_SIG, FORM_CT, DUP_BODY, TOKEN), Ok(()));
    }

    #[test]
    fn param_order_in_the_body_does_not_matter() {
        let reordered = b"Caller=%2B14158675309&To=%2B18005551212&From=%2B14158675309&Digits=1234&CallSid=CA1234567890ABCDE";
        assert_eq!(check(URL, FORM_SIG, FORM_CT, reordered, TOKEN), Ok(()));
    }

    #[test]
    fn tampered_param_is_invalid() {
        let body = b"CallSid=CA1234567890ABCDE&Digits=9999&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309";
        assert_eq!(
            check(URL, FORM_SIG, FORM_CT, body, TOKEN),
            Err(SignatureError::Invalid)
        );
    }

    // Security property: without bodySHA256 a JSON body is not covered by the signature.
    #[test]
    fn json_body_without_body_sha256_is_invalid() {
        let empty_params_sig = FORM_SIG;
        assert_eq!(
            check(URL, empty_params_sig, "application/json", JSON_BODY, TOKEN),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn url_variants_toggle_only_the_default_port() {
        assert_eq!(
            url_variants("https://a.test/x?y=1"),
            ["https://a.test/x?y=1", "https://a.test:443/x?y=1"]
        );
        assert_eq!(
            url_variants("http://u:p@a.test:80"),
            ["http://u:p@a.test:80", "http://u:p@a.test"]
        );
        assert_eq!(
            url_variants("https://[::1]:443/x"),
            ["https://[::1]:443/x", "https://[::1]/x"]
        );
        assert_eq!(
            url_variants("https://a.test:8443/x"),
            ["https://a.test:8443/x"]
        );
    }
}
