//! The OpenID Connect relying party: discovery, the authorization request, the code
//! exchange and ID-token verification, through the `openidconnect` crate.
//!
//! Owns talking to the provider. Discovery (with the JWKS) happens on first use and is
//! kept; an ID token signed with an unknown `kid` makes it fetch the JWKS again (at most
//! every [`JWKS_REFRESH_MIN`]) and retry once. Requests use PKCE S256, a random `state`
//! and `nonce`; ID tokens are checked for signature, `iss`, `aud`, `exp` and `nonce`;
//! userinfo is asked when the ID token has no email. The provider's tokens stay here: they
//! are never returned to the browser or forwarded. HTTP goes through hyper-util with a
//! deadline and a size cap, and never follows redirects.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessToken, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    HttpRequest, HttpResponse, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError, TokenResponse,
};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::Oidc;
use crate::sensitive::Secret;

/// Deadline of one request to the provider.
pub const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest provider response read.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
/// The JWKS is fetched again for an unknown `kid` at most this often.
pub const JWKS_REFRESH_MIN: Duration = Duration::from_secs(10);

/// Why the provider exchange failed. Everything maps to a failed sign-in; the text is for
/// the log and never holds a token.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    #[error("provider answer rejected: {0}")]
    Rejected(String),
}

/// An HTTP client for the `openidconnect` crate over hyper-util (TLS by rustls).
#[derive(Clone)]
pub struct ProviderHttp {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request failed: {0}")]
    Failed(String),
    #[error("timed out")]
    Timeout,
}

impl ProviderHttp {
    pub fn new() -> ProviderHttp {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        ProviderHttp {
            client: Client::builder(TokioExecutor::new()).build(https),
        }
    }

    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = req.into_parts();
        let req = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let fut = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| HttpError::Failed(e.to_string()))?;
            let (parts, body) = resp.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| HttpError::Failed(e.to_string()))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(PROVIDER_TIMEOUT, fut)
            .await
            .map_err(|_| HttpError::Timeout)?
    }
}

impl Default for ProviderHttp {
    fn default() -> Self {
        ProviderHttp::new()
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}

/// What a sign-in starts with: the URL to send the browser to, and the secrets kept
/// server-side until the callback.
#[derive(Debug)]
pub struct AuthRequest {
    pub url: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderUser {
    pub subject: String,
    pub email: String,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

struct Discovered {
    /// `issuer` and `client_id` it was discovered for (a reload may change them).
    for_config: (String, String),
    metadata: CoreProviderMetadata,
    jwks_fetched: Instant,
}

/// The relying party, kept across reloads; rediscovers when the issuer changes.
pub struct OidcClient {
    http: ProviderHttp,
    discovered: Mutex<Option<Discovered>>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OidcClient")
    }
}

impl Default for OidcClient {
    fn default() -> Self {
        OidcClient::new()
    }
}

fn unavailable(e: impl std::fmt::Display) -> OidcError {
    OidcError::Unavailable(e.to_string())
}

fn rejected(e: impl std::fmt::Display) -> OidcError {
    OidcError::Rejected(e.to_string())
}

impl OidcClient {
    pub fn new() -> OidcClient {
        OidcClient {
            http: ProviderHttp::new(),
            discovered: Mutex::new(None),
        }
    }

    /// The provider metadata (with JWKS), discovering it on first use.
    async fn metadata(&self, cfg: &Oidc) -> Result<CoreProviderMetadata, OidcError> {
        let key = (cfg.issuer.clone(), cfg.client_id.clone());
        let mut guard = self.discovered.lock().await;
        if let Some(d) = guard.as_ref().filter(|d| d.for_config == key) {
            return Ok(d.metadata.clone());
        }
        let issuer = IssuerUrl::new(cfg.issuer.clone()).map_err(rejected)?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(unavailable)?;
        *guard = Some(Discovered {
            for_config: key,
            metadata: metadata.clone(),
            jwks_fetched: Instant::now(),
        });
        Ok(metadata)
    }

    /// Fetch the JWKS again (for an unknown `kid`), unless it was fetched very recently.
    async fn refresh_jwks(&self, cfg: &Oidc) -> Result<Option<CoreProviderMetadata>, OidcError> {
        let mut guard = self.discovered.lock().await;
        let Some(d) = guard.as_mut() else {
            return Ok(None);
        };
        if d.jwks_fetched.elapsed() < JWKS_REFRESH_MIN
            || d.for_config != (cfg.issuer.clone(), cfg.client_id.clone())
        {
            return Ok(None);
        }
        let jwks = CoreJsonWebKeySet::fetch_async(d.metadata.jwks_uri(), &self.http)
            .await
            .map_err(unavailable)?;
        d.metadata = d.metadata.clone().set_jwks(jwks);
        d.jwks_fetched = Instant::now();
        tracing::info!("oidc jwks refreshed for an unknown key id");
        Ok(Some(d.metadata.clone()))
    }

    fn client(
        metadata: CoreProviderMetadata,
        cfg: &Oidc,
        secret: &Secret,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        OidcError,
    > {
        let secret = secret
            .expose_str()
            .ok_or_else(|| rejected("the client secret is not UTF-8"))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(cfg.client_id.clone()),
            Some(ClientSecret::new(secret.trim().to_owned())),
        )
        .set_redirect_uri(RedirectUrl::new(redirect.to_owned()).map_err(rejected)?))
    }

    /// Build the authorization request (PKCE S256, nonce) carrying `state`.
    pub async fn authorize_url(
        &self,
        cfg: &Oidc,
        secret: &Secret,
        redirect: &str,
        state: &str,
    ) -> Result<AuthRequest, OidcError> {
        let client = Self::client(self.metadata(cfg).await?, cfg, secret, redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut req = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for s in cfg.scopes.iter().filter(|s| *s != "openid") {
            req = req.add_scope(Scope::new(s.clone()));
        }
        let (url, _state, nonce) = req.url();
        Ok(AuthRequest {
            url: url.to_string(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchange the code, verify the ID token, and read the user (userinfo when the ID
    /// token has no email).
    pub async fn exchange(
        &self,
        cfg: &Oidc,
        secret: &Secret,
        redirect: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<ProviderUser, OidcError> {
        let metadata = self.metadata(cfg).await?;
        let client = Self::client(metadata, cfg, secret, redirect)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(rejected)?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::Request(e) => {
                    unavailable(format!("token endpoint: {e}"))
                }
                e => rejected(format!("token endpoint: {e}")),
            })?;
        let id_token = token
            .id_token()
            .ok_or_else(|| rejected("no id_token in the token response"))?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match id_token.claims(&client.id_token_verifier(), &nonce) {
            Ok(c) => c.clone(),
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                let metadata = self
                    .refresh_jwks(cfg)
                    .await?
                    .ok_or_else(|| rejected("id_token signed by an unknown key"))?;
                let refreshed = Self::client(metadata, cfg, secret, redirect)?;
                let verifier = refreshed.id_token_verifier();
                let claims = id_token
                    .claims(&verifier, &nonce)
                    .map_err(|e| rejected(format!("id_token: {e}")))?
                    .clone();
                claims
            }
            Err(e) => return Err(rejected(format!("id_token: {e}"))),
        };
        // The signature is verified above; read the configured groups claim from it.
        let raw_claims = raw_payload(&id_token.to_string()).unwrap_or(Value::Null);
        let groups = groups_from(&raw_claims, &cfg.groups_claim);
        let subject = claims.subject().as_str().to_owned();
        let name = claims
            .name()
            .and_then(|n| n.get(None))
            .map(|n| n.as_str().to_owned());
        let (email, verified) = match claims.email() {
            Some(e) => (e.as_str().to_owned(), claims.email_verified()),
            None => {
                let info = self
                    .userinfo(&client, token.access_token().clone(), &claims)
                    .await?;
                let email = info
                    .email()
                    .map(|e| e.as_str().to_owned())
                    .ok_or_else(|| rejected("the provider gave no email"))?;
                (email, info.email_verified())
            }
        };
        if verified == Some(false) {
            return Err(rejected("the provider says the email is not verified"));
        }
        Ok(ProviderUser {
            subject,
            email,
            name,
            groups,
        })
    }

    async fn userinfo(
        &self,
        client: &CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        access: AccessToken,
        claims: &openidconnect::core::CoreIdTokenClaims,
    ) -> Result<CoreUserInfoClaims, OidcError> {
        client
            .user_info(access, Some(claims.subject().clone()))
            .map_err(rejected)?
            .request_async(&self.http)
            .await
            .map_err(|e| rejected(format!("userinfo: {e}")))
    }
}

/// The JSON payload of a JWT whose signature was already verified.
fn raw_payload(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Group names from a claim that is a string array (non-strings ignored) or one string.
fn groups_from(claims: &Value, name: &str) -> Vec<String> {
    match claims.get(name) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_are_read_from_the_configured_claim() {
        let c = json!({"groups": ["a", 1, "b"], "roles": "admin"});
        assert_eq!(groups_from(&c, "groups"), vec!["a", "b"]);
        assert_eq!(groups_from(&c, "roles"), vec!["admin"]);
        assert!(groups_from(&c, "missing").is_empty());
    }
}
