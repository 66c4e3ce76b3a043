//! Who the caller is: the port's authorization decision, and the identity headers the
//! service receives.

use http::HeaderValue;

use crate::auth::{self, Decision, Identity};
use crate::config::Validation;
use crate::embed;
use crate::headers;
use crate::route::Resolved;
use crate::state::{Shared, State};

/// Decide whether the caller may use this port.
pub(super) async fn authorize(
    shared: &Shared,
    state: &State,
    parts: &http::request::Parts,
    resolved: &Resolved<'_>,
    place: auth::iap::Place<'_>,
) -> Decision {
    let room = &resolved.port.room;
    match resolved.policy.validation {
        Validation::Public => Decision::Public,
        Validation::Bearer => {
            let now = (shared.clock)();
            auth::authorize_bearer(&parts.headers, parts.uri.query(), &state.tokens, room, now)
        }
        // Boxed: the session lookup's state would otherwise size every request's future.
        Validation::Cookie => {
            let gate = auth::iap::CookieGate {
                config: &state.config,
                tokens: &state.tokens,
                auth_host: state.auth_host.as_ref(),
                sessions: &shared.iap.sessions,
                now: (shared.clock)(),
                place,
            };
            Box::pin(auth::iap::authorize(gate, parts, room)).await
        }
        Validation::Webhook(_) => Decision::Deny(auth::AuthError::MissingAuth),
    }
}

/// Set the trusted identity headers (after client copies were stripped). UTF-8 names
/// pass as they are; a name that cannot be a header value (control characters) is an
/// error, never a request forwarded without its identity.
pub(super) fn set_identity(
    headers: &mut http::HeaderMap,
    identity: Option<&Identity>,
    assertion: Option<String>,
) -> Result<(), http::header::InvalidHeaderValue> {
    let Some(identity) = identity else {
        return Ok(());
    };
    let user = HeaderValue::from_bytes(identity.user.as_bytes())?;
    let scope = HeaderValue::from_str(&identity.api_scope.to_string())?;
    headers.insert(headers::X_MESHAGENT_USER, user);
    headers.insert(headers::X_MESHAGENT_API_SCOPE, scope);
    if let Some(session) = &identity.embed_session {
        headers.insert(
            embed::decide::SESSION_HEADER,
            HeaderValue::from_str(session)?,
        );
    }
    if let Some(jwt) = assertion {
        headers.insert(crate::assertion::HEADER, HeaderValue::from_str(&jwt)?);
    }
    Ok(())
}
