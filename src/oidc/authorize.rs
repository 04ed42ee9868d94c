//! The authorization decision (OIDC Core §3.1.2.3–§3.1.2.5): after the session
//! checks every app's sign-in passes (`authn::gate`), consent, then the code
//! (RFC 6749 §4.1.2) back to the client.

use super::authorize_request::{AuthRequest, AuthResponse};
use super::grants_repo::{self as grants, CodeRow, Grant};
use super::{Client, OidcError};
use crate::authn::{Gate, NextStep, Refusal, Session};
use crate::AppState;

/// Where the browser goes next.
#[derive(Debug)]
pub enum Next {
    /// A step of the sign-in itself (`authn::gate`): sign in, choose the account,
    /// add a second factor, choose a password.
    SignIn(NextStep),
    Consent(String),
    /// Back to the client: code or error parameters.
    Respond(AuthResponse),
}

/// The OAuth error code and description for a sign-in that cannot go on without
/// the person, under `prompt=none` (OIDC Core §3.1.2.6), or for an inactive account.
pub fn refusal_error(r: Refusal) -> (&'static str, &'static str) {
    match r {
        Refusal::LoginRequired => (
            "login_required",
            "the person is not signed in (or not recently enough)",
        ),
        Refusal::SecondFactorRequired => (
            "interaction_required",
            "a second factor is needed for this app",
        ),
        Refusal::PasswordChangeRequired => (
            "interaction_required",
            "the person must choose a new password first",
        ),
        Refusal::AccountInactive => ("access_denied", "the account is not active"),
    }
}

/// OIDC Core §3.1.2.6: consent is needed and the client asked for no interaction.
const CONSENT_REQUIRED: (&str, &str) = (
    "consent_required",
    "the person has not yet agreed to share this with the app",
);

/// What happens next for a validated request, given the browser's session.
pub async fn decide(
    app: &AppState,
    handle: &str,
    req: &AuthRequest,
    client: &Client,
    session: Option<&Session>,
) -> Result<Next, OidcError> {
    let issuer = app.issuer();
    let refuse = |(error, description): (&str, &str)| {
        Ok(Next::Respond(req.error(issuer, error, description)))
    };
    let gate = crate::authn::gate(
        app,
        handle,
        req.demands(),
        client.settings.mfa_required,
        session,
    )
    .await
    .map_err(OidcError::server_error)?;
    let session = match gate {
        Gate::Proceed(s) => s,
        Gate::Go(step) => return Ok(Next::SignIn(step)),
        Gate::Refuse(r) => return refuse(refusal_error(r)),
    };
    if needs_consent(app, req, client, &session.person_id).await? {
        if req.has_prompt("none") {
            return refuse(CONSENT_REQUIRED);
        }
        return Ok(Next::Consent(handle.to_string()));
    }
    let code = issue_code(app, req, session, client.settings.refresh_token_ttl_seconds).await?;
    let mut params = vec![("code", code)];
    if let Some(s) = &req.state {
        params.push(("state", s.clone()));
    }
    params.push(("iss", issuer.to_string()));
    super::requests::drop_request(app, handle).await?;
    Ok(Next::Respond(AuthResponse {
        redirect_uri: req.redirect_uri.clone(),
        form_post: req.response_mode == "form_post",
        params,
    }))
}

/// First-party clients skip consent; others need a remembered decision covering
/// every requested scope, or show the page when the client asks (`prompt=consent`).
async fn needs_consent(
    app: &AppState,
    req: &AuthRequest,
    client: &Client,
    person_id: &str,
) -> Result<bool, OidcError> {
    if req.has_prompt("consent") {
        return Ok(true);
    }
    if client.settings.first_party {
        return Ok(false);
    }
    let granted = super::consent::granted_scopes(app, person_id, &client.id).await?;
    Ok(!req.consent_scopes().iter().all(|s| granted.contains(s)))
}

async fn issue_code(
    app: &AppState,
    req: &AuthRequest,
    session: &Session,
    client_refresh_ttl: Option<i64>,
) -> Result<String, OidcError> {
    let now = app.clock().now_ms();
    let cfg = &app.config().oauth;
    let offline = req.scopes.iter().any(|s| s == "offline_access");
    // A client's own refresh lifetime, when registered, bounds the grant too.
    let lifetime = client_refresh_ttl.unwrap_or(if offline {
        cfg.offline_refresh_token_ttl_seconds
    } else {
        cfg.refresh_token_ttl_seconds
    });
    let grant = Grant {
        id: crate::store::new_id(),
        client_id: req.client_id.clone(),
        person_id: session.person_id.clone(),
        session_id: Some(session.id.clone()),
        scopes: req.scopes.clone(),
        auth_time_ms: session.auth_time_ms,
        acr: session.acr.clone(),
        amr: session.amr.clone(),
        dpop_jkt: req.dpop_jkt.clone(),
        offline,
        expires_at_ms: now + lifetime * 1000,
        revoked: false,
        claims: req.claims.clone(),
    };
    let code = crate::crypto::random_token(32);
    let mut tx = app.store().begin().await.map_err(OidcError::server_error)?;
    grants::insert_grant(&mut tx, &grant, now).await?;
    grants::insert_code(
        &mut tx,
        &app.master_key().digest_secret(&code),
        &CodeRow {
            grant_id: grant.id.clone(),
            client_id: req.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            nonce: req.nonce.clone(),
            code_challenge: req.code_challenge.clone(),
            expires_at_ms: now + cfg.code_ttl_seconds * 1000,
            used: false,
        },
        now,
    )
    .await?;
    // Who signed in to which app, with what: the access report FERPA/HIPAA audits ask for.
    let origin = crate::audit::Origin {
        actor_kind: "person",
        actor_id: session.person_id.clone(),
        meta: Default::default(),
    };
    crate::audit::record(
        &mut tx,
        app.audit_key(),
        now,
        &origin,
        crate::audit::Entry {
            action: "oidc.authorize",
            outcome: crate::audit::Outcome::Success,
            target_kind: "client",
            target_id: &req.client_id,
            details: serde_json::json!({ "scopes": req.scopes, "grant": grant.id, "session": session.id }),
        },
    )
    .await
    .map_err(OidcError::server_error)?;
    tx.commit().await.map_err(OidcError::server_error)?;
    crate::ops::metrics::oidc_event("code_issued");
    Ok(code)
}
