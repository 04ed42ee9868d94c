//! The two halves of an upstream OpenID Connect sign-in: the authorization request
//! (`begin`) and its answer at our redirect URI (`callback`).

use openidconnect::core::{
    CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod,
    CoreErrorResponseType, CoreIdToken,
};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope, TokenResponse as _,
};
use serde::{Deserialize, Serialize};

use super::id_token::{self, Expect};
use super::pending::{self, Take};
use super::{Metadata, OidcIdp};
use crate::audit::Origin;
use crate::crypto::sha256_hex;
use crate::federation::error::IdTokenRefusal;
use crate::federation::linking::{self, LinkPolicy};
use crate::federation::{Completed, FederationError, Started, ACR_FEDERATED, ACR_MFA};
use crate::AppState;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What is sealed in the pending request: only the callback's own browser, holding
/// the state, can make the hub use these.
#[derive(Serialize, Deserialize)]
struct Secrets {
    nonce: String,
    verifier: String,
}

fn seal_label(state_digest: &str) -> String {
    // The row's key as associated data: a sealed blob moved to another row won't open.
    format!("oidc-rp-request:{state_digest}")
}

fn rp_client(idp: &OidcIdp, m: &Metadata) -> Result<Client, FederationError> {
    let redirect = RedirectUrl::new(idp.redirect_uri.clone())
        .map_err(|e| FederationError::BadMetadata(format!("redirect URI: {e}")))?;
    // As configured; else client_secret_basic (Core §9: the default) unless the
    // provider only offers client_secret_post.
    let methods = m.token_endpoint_auth_methods_supported();
    let post_only = match idp.config.token_endpoint_auth_method.as_deref() {
        Some(method) => method == "client_secret_post",
        None => methods.is_some_and(|ms| {
            !ms.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && ms.contains(&CoreClientAuthMethod::ClientSecretPost)
        }),
    };
    Ok(CoreClient::from_provider_metadata(
        m.clone(),
        ClientId::new(idp.config.client_id.clone()),
        Some(ClientSecret::new(idp.client_secret.clone())),
    )
    .set_redirect_uri(redirect)
    .set_auth_type(if post_only {
        AuthType::RequestBody
    } else {
        AuthType::BasicAuth
    }))
}

/// Step 1: the authorization request (Core §3.1.2.1) with state, nonce and PKCE S256.
/// `force_login` and `max_age` carry a downstream app's prompt=login / max_age.
pub async fn begin(
    app: &AppState,
    idp_id: &str,
    auth_request: Option<&str>,
    force_login: bool,
    max_age: Option<i64>,
) -> Result<Started, FederationError> {
    let idp = app.federation().oidc_idp(idp_id)?;
    let meta = idp.metadata().ok_or(FederationError::MetadataUnavailable)?;
    let client = rp_client(idp, &meta)?;
    let now = app.clock().now_ms();
    let state = crate::crypto::random_token(32);
    let nonce = crate::crypto::random_token(32);
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let browser_secret = crate::crypto::random_token(32);
    let state_digest = sha256_hex(&state);
    let max_age = match (idp.config.max_age_seconds.map(|m| m as i64), max_age) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let secrets = serde_json::to_vec(&Secrets {
        nonce: nonce.clone(),
        verifier: verifier.secret().clone(),
    })
    .map_err(|e| FederationError::Credentials(e.to_string()))?;
    let sealed = crate::crypto::seal(app.master_key(), &seal_label(&state_digest), &secrets)
        .map_err(|e| FederationError::Credentials(e.to_string()))?;
    pending::save(
        app.store(),
        &pending::NewRequest {
            state_digest: &state_digest,
            idp_id,
            browser_digest: &sha256_hex(&browser_secret),
            sealed: &sealed,
            max_age,
            auth_request,
            now_ms: now,
            expires_at_ms: now + app.config().federation.request_ttl_seconds * 1000,
        },
    )
    .await?;
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            move || CsrfToken::new(state),
            move || Nonce::new(nonce),
        )
        .set_pkce_challenge(challenge);
    for scope in idp.config.scopes.iter().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(scope.clone()));
    }
    let mut prompts: Vec<&str> = idp
        .config
        .prompt
        .as_deref()
        .map(|p| p.split(' ').collect())
        .unwrap_or_default();
    if force_login && !prompts.contains(&"login") {
        prompts.push("login");
    }
    for p in prompts {
        req = req.add_prompt(match p {
            "login" => CoreAuthPrompt::Login,
            "consent" => CoreAuthPrompt::Consent,
            _ => CoreAuthPrompt::SelectAccount,
        });
    }
    if let Some(m) = max_age {
        req = req.set_max_age(std::time::Duration::from_secs(m.max(0) as u64));
    }
    // Google shows only accounts of this Workspace domain (a hint; `hd` is checked
    // in the ID token all the same).
    if let [hd] = idp.config.allowed_hd.as_slice() {
        req = req.add_extra_param("hd", hd.clone());
    }
    let (url, _, _) = req.url();
    Ok(Started {
        redirect_url: url.to_string(),
        browser_secret,
    })
}

/// The query of a redirect to our callback (RFC 6749 §4.1.2 / §4.1.2.1, RFC 9207).
#[derive(Debug, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// The error codes an authorization response may carry (RFC 6749 §4.1.2.1 and OpenID
/// Connect Core §3.1.2.6). Anything else is shown as `unknown_error`: the page never
/// repeats what the provider (or whoever made the link) put there.
fn known_error(code: &str) -> &'static str {
    const KNOWN: [&str; 16] = [
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    ];
    KNOWN
        .into_iter()
        .find(|k| *k == code)
        .unwrap_or("unknown_error")
}

/// Step 2: the provider's answer. Returns the sign-in ready to become a session.
pub async fn callback(
    app: &AppState,
    idp_id: &str,
    params: &CallbackParams,
    browser_secret: Option<&str>,
    origin: &Origin,
) -> Result<Completed, FederationError> {
    let idp = app.federation().oidc_idp(idp_id)?;
    let meta = idp.metadata().ok_or(FederationError::MetadataUnavailable)?;
    let state = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .ok_or(FederationError::BadCallback("no state"))?;
    let now = app.clock().now_ms();
    let browser = sha256_hex(browser_secret.unwrap_or_default());
    let state_digest = sha256_hex(state);
    let taken = match pending::take(app.store(), idp_id, &state_digest, &browser, now).await? {
        Take::Taken(t) => t,
        Take::Missing => return Err(FederationError::Expired),
        Take::OtherBrowser => {
            return Err(FederationError::OtherBrowser {
                idp: idp_id.to_string(),
            })
        }
    };
    // RFC 9207 §2.4: the response names its issuer (mix-up attacks); a provider that
    // says it always does must not leave it out.
    let issuer = meta.issuer().as_str();
    match params.iss.as_deref() {
        Some(iss) if iss != issuer => {
            return Err(FederationError::IdToken(IdTokenRefusal::Issuer(
                "the authorization response's iss is not the provider's".into(),
            )))
        }
        None if meta
            .additional_metadata()
            .authorization_response_iss_parameter_supported
            == Some(true) =>
        {
            return Err(FederationError::IdToken(IdTokenRefusal::Issuer(
                "the authorization response has no iss".into(),
            )))
        }
        _ => {}
    }
    if let Some(error) = &params.error {
        return Err(FederationError::IdpError(known_error(error)));
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or(FederationError::BadCallback("no code"))?;
    let secrets: Secrets =
        crate::crypto::open(app.master_key(), &seal_label(&state_digest), &taken.sealed)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| {
                FederationError::Credentials("a pending request does not open".into())
            })?;
    let client = rp_client(idp, &meta)?;
    let fed = app.federation();
    let response = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| FederationError::TokenExchange(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(secrets.verifier))
        .request_async(fed.upstream_http())
        .await
        .map_err(exchange_error)?;
    if response.access_token().secret().is_empty() {
        return Err(FederationError::TokenExchange("no access_token".into()));
    }
    let token: &CoreIdToken = response
        .id_token()
        .ok_or(FederationError::IdToken(IdTokenRefusal::Missing))?;
    let expect = Expect {
        cfg: &idp.config,
        nonce: &secrets.nonce,
        now_ms: now,
        skew_seconds: app.config().federation.clock_skew_seconds,
        max_age: taken.max_age,
    };
    let checked = match id_token::verify(token, client.id_token_verifier(), &expect) {
        Ok(c) => c,
        // A kid we do not know: the provider may have rolled its keys (Core §10.1.1).
        Err(None) => {
            let retry = if idp.refetch_keys(fed.upstream_http(), now).await {
                let meta = idp.metadata().ok_or(FederationError::MetadataUnavailable)?;
                let client = rp_client(idp, &meta)?;
                id_token::verify(token, client.id_token_verifier(), &expect)
            } else {
                Err(None)
            };
            retry.map_err(|e| {
                e.unwrap_or(FederationError::IdToken(IdTokenRefusal::Signature(
                    "no key of the provider has this kid".into(),
                )))
            })?
        }
        Err(Some(e)) => return Err(e),
    };
    let policy = LinkPolicy::oidc(&idp.config);
    let person = linking::resolve_person(app, &policy, &checked, origin).await?;
    let mut amr = vec!["fed".to_string()];
    if checked.mfa {
        amr.push("mfa".into());
    }
    Ok(Completed {
        idp_id: idp_id.to_string(),
        person_id: person.id,
        acr: if checked.mfa { ACR_MFA } else { ACR_FEDERATED }.to_string(),
        amr,
        auth_request: taken.auth_request,
    })
}

/// The token endpoint's failure, for the log: an OAuth error code, or what went wrong
/// in transport. Never the response body, which could carry tokens.
fn exchange_error<E: std::error::Error>(
    e: RequestTokenError<E, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> FederationError {
    let detail = match e {
        RequestTokenError::ServerResponse(r) => format!("error={}", r.error().as_ref()),
        RequestTokenError::Request(e) => format!("request: {e}"),
        RequestTokenError::Parse(e, body) => {
            let at = e.path().to_string();
            if let Some(claim) = unreadable_claim(&at, &body) {
                return FederationError::UnreadableClaim(claim);
            }
            format!("unparsable response at {at}")
        }
        RequestTokenError::Other(m) => m.chars().take(200).collect(),
    };
    FederationError::TokenExchange(detail)
}

/// Which value of a token response the hub could not read: a field of the response
/// (`expires_in` as a word), or a claim inside its ID token (`email_verified: "yes"`).
/// None when the body is not a JSON object at all (an HTML error page: a transport
/// problem, worth a retry). Only the name is returned, never a value.
fn unreadable_claim(at: &str, body: &[u8]) -> Option<String> {
    let from_id_token = || {
        let response: serde_json::Value = serde_json::from_slice(body).ok()?;
        let token = response.get("id_token")?.as_str()?.to_string();
        unreadable_id_token_claim(&token)
    };
    let name = if at == "id_token" {
        from_id_token().unwrap_or_else(|| "id_token".into())
    } else if at.is_empty() || at == "." {
        // openidconnect flattens the ID token fields into the token response, and
        // serde's flatten loses the path: look inside the ID token ourselves.
        from_id_token()?
    } else {
        at.to_string()
    };
    // A name the provider chose: shown on a page and in the log, so kept plain.
    let plain: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-:".contains(*c))
        .take(64)
        .collect();
    (!plain.is_empty()).then_some(plain)
}

/// The claim of an (unverified) ID token that openidconnect cannot read as the type
/// OpenID Connect Core §5.1 gives it: the first claim whose removal lets the rest read,
/// else the path serde reports.
fn unreadable_id_token_claim(token: &str) -> Option<String> {
    use base64::Engine as _;
    type Claims = openidconnect::IdTokenClaims<
        openidconnect::EmptyAdditionalClaims,
        openidconnect::core::CoreGenderClaim,
    >;
    let part = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes).ok()?;
    let reads = |m: &serde_json::Map<String, serde_json::Value>| {
        serde_json::from_value::<Claims>(serde_json::Value::Object(m.clone())).is_ok()
    };
    if reads(&claims) {
        return None;
    }
    for name in claims.keys() {
        let mut without = claims.clone();
        without.remove(name);
        if reads(&without) {
            return Some(name.clone());
        }
    }
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let read: Result<Claims, _> = serde_path_to_error::deserialize(&mut de);
    let path = read.err()?.path().to_string();
    (!path.is_empty() && path != ".").then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id_token_with(claims: serde_json::Value) -> String {
        use base64::Engine as _;
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.c2ln",
            b64(&serde_json::json!({"alg": "RS256"})),
            b64(&claims)
        )
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "iss": "https://idp.example", "sub": "s1", "aud": "c", "exp": 2_000_000_000, "iat": 1_700_000_000,
            "email": "ana@riverside.k12.example"
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    #[test]
    fn an_unreadable_claim_is_named_and_a_string_boolean_is_read() {
        for (extra, named) in [
            (
                serde_json::json!({"email_verified": "yes"}),
                "email_verified",
            ),
            (serde_json::json!({"exp": "tomorrow"}), "exp"),
            (serde_json::json!({"updated_at": {"x": 1}}), "updated_at"),
        ] {
            let body = serde_json::json!({
                "access_token": "a", "token_type": "Bearer",
                "id_token": id_token_with(claims(extra.clone()))
            })
            .to_string();
            assert_eq!(
                unreadable_claim("id_token", body.as_bytes()).as_deref(),
                Some(named),
                "{extra}"
            );
        }
        // "true" and "false" as strings read as the booleans they mean.
        for v in ["true", "false"] {
            let t = id_token_with(claims(serde_json::json!({ "email_verified": v })));
            assert_eq!(unreadable_id_token_claim(&t), None, "{v}");
        }
        // A response field, and a body that is not JSON (not the provider's claims).
        assert_eq!(
            unreadable_claim("expires_in", b"{}").as_deref(),
            Some("expires_in")
        );
        assert_eq!(unreadable_claim(".", b"<html>busy</html>"), None);
        // The path serde reports through openidconnect's flattened fields is ".".
        let body = serde_json::json!({
            "access_token": "a", "token_type": "Bearer",
            "id_token": id_token_with(claims(serde_json::json!({"email_verified": "yes"})))
        })
        .to_string();
        assert_eq!(
            unreadable_claim(".", body.as_bytes()).as_deref(),
            Some("email_verified")
        );
    }

    #[test]
    fn only_registered_error_codes_are_kept() {
        assert_eq!(known_error("access_denied"), "access_denied");
        assert_eq!(known_error("login_required"), "login_required");
        assert_eq!(known_error("<b>hi</b>"), "unknown_error");
        assert_eq!(known_error("ACCESS_DENIED"), "unknown_error");
    }
}
