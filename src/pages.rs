//! The few HTML pages roomgate shows browsers during sign-in: the static provider's
//! form, the auto-submitting handoff form, the not-a-participant page and sign-out.
//!
//! Owns their markup and security headers (no caching, a strict Content-Security-Policy,
//! no framing). Every interpolated value is HTML-escaped. No state, no I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{header, HeaderValue, Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::body::{full, Body};

/// The only script roomgate serves: submit the handoff form.
const SUBMIT_SCRIPT: &str = "document.getElementById('handoff').submit();";

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title)
    )
}

/// An HTML response with the headers every roomgate page carries.
pub fn html(status: StatusCode, page: String, csp: &str) -> Response<Body> {
    let mut resp = Response::new(full(page));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("origin"));
    if let Ok(v) = HeaderValue::from_str(csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

const BASE_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'";

/// The static provider's sign-in form.
pub fn sign_in_form(flow: &str, email: &str, error: Option<&str>) -> Response<Body> {
    let err = error
        .map(|e| format!("<p role=\"alert\" id=\"error\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "{err}<form method=\"post\" action=\"/.roomgate/login\">\
         <input type=\"hidden\" name=\"flow\" value=\"{flow}\">\
         <label>Email <input type=\"email\" name=\"email\" id=\"email\" value=\"{email}\" autocomplete=\"username\" required></label>\
         <label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" id=\"submit\">Sign in</button></form>",
        flow = escape(flow),
        email = escape(email),
    );
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    html(
        status,
        layout("Sign in", &body),
        &format!("{BASE_CSP}; form-action 'self'"),
    )
}

/// The page that posts a handoff code to `{origin}/.roomgate/callback` on load.
pub fn handoff(origin: &str, code: &str) -> Response<Body> {
    let body = format!(
        "<form id=\"handoff\" method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"code\" value=\"{code}\">\
         <noscript><button type=\"submit\">Continue</button></noscript></form>\
         <script>{SUBMIT_SCRIPT}</script>",
        action = escape(&format!("{origin}/.roomgate/callback")),
        code = escape(code),
    );
    let hash = STANDARD.encode(Sha256::digest(SUBMIT_SCRIPT.as_bytes()));
    html(
        StatusCode::OK,
        layout("Signing in…", &body),
        &format!("{BASE_CSP}; script-src 'sha256-{hash}'; form-action {origin}"),
    )
}

fn sign_out_form(csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"/.roomgate/signout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" id=\"signout\">Sign out</button></form>",
        escape(csrf)
    )
}

/// 403 for a signed-in user who is not a participant of the room.
pub fn not_a_participant(email: &str, csrf: &str) -> Response<Body> {
    let body = format!(
        "<p id=\"code\">not_a_participant</p><p>You are signed in as <b id=\"user\">{}</b>, \
         who is not a participant of this room.</p>{}",
        escape(email),
        sign_out_form(csrf)
    );
    html(
        StatusCode::FORBIDDEN,
        layout("Not a participant", &body),
        &format!("{BASE_CSP}; form-action 'self'"),
    )
}

/// Asks to confirm sign-out (a link can lead here; only the POST signs out).
pub fn sign_out_confirm(csrf: &str) -> Response<Body> {
    html(
        StatusCode::OK,
        layout("Sign out", &sign_out_form(csrf)),
        &format!("{BASE_CSP}; form-action 'self'"),
    )
}

pub fn signed_out() -> Response<Body> {
    html(
        StatusCode::OK,
        layout("Signed out", "<p id=\"signed-out\">You are signed out.</p>"),
        BASE_CSP,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolated_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
    }

    #[test]
    fn the_handoff_page_allows_only_its_own_script_and_target() {
        let r = handoff("https://app.test", "c0de");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("form-action https://app.test"));
        assert!(csp.contains("script-src 'sha256-"));
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    }
}
