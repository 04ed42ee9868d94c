//! Pushed authorization requests (RFC 9126).

use super::authorize_request::{validate_request, AuthorizeError};
use super::client_auth::{authenticate_client, Form};
use super::requests::{save_request, PAR_PREFIX};
use super::{OAuthCode, OidcError};
use crate::AppState;

pub async fn push(
    app: &AppState,
    body: &[u8],
    authorization: Option<&str>,
) -> Result<(String, i64), OidcError> {
    let form = Form::parse(body)?;
    let endpoint = format!("{}/oauth2/par", app.issuer());
    let client = authenticate_client(app, &form, authorization, &endpoint).await?;
    if form.get("request_uri").is_some() {
        return Err(OidcError::invalid_request(
            "request_uri must not be pushed (RFC 9126 §2.1)",
        ));
    }
    let mut params: Vec<(String, String)> = form
        .pairs()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "client_secret" | "client_assertion" | "client_assertion_type"
            )
        })
        .cloned()
        .collect();
    if !params.iter().any(|(k, _)| k == "client_id") {
        params.push(("client_id".into(), client.id.clone()));
    }
    let (req, _) = match validate_request(app, &params).await {
        Ok(ok) => ok,
        // §2.3: errors are answered to the client directly, as JSON.
        Err(AuthorizeError::Page(m)) => return Err(OidcError::invalid_request(m)),
        Err(AuthorizeError::Redirect(r)) => {
            let get = |k: &str| {
                r.params
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let code = match get("error").as_str() {
                "invalid_scope" => OAuthCode::InvalidScope,
                "unsupported_response_type" => OAuthCode::UnsupportedResponseType,
                _ => OAuthCode::InvalidRequest,
            };
            return Err(OidcError::with_code(code, get("error_description")));
        }
    };
    if req.client_id != client.id {
        return Err(OidcError::invalid_request(
            "client_id differs from the authenticated client",
        ));
    }
    let handle = save_request(app, &req, true).await?;
    Ok((
        format!("{PAR_PREFIX}{handle}"),
        app.config().oauth.par_ttl_seconds,
    ))
}
