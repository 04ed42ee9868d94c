//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). With a valid
//! `id_token_hint` for the current session the person is signed out at once;
//! otherwise (no hint, or a hint for another person or session) they confirm on a
//! page (a CSRF-protected form), so a link on another site cannot sign them out. A
//! hint that does not verify is refused outright (§4).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use super::authorize_http::query_or_form;
use crate::web::{clear_session, page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/oauth2/logout", get(logout).post(logout))
}

async fn logout(
    State(app): State<AppState>,
    browser: Browser,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let params = query_or_form(&method, &uri, &headers, &body)
        .ok_or_else(|| PageError::bad_request("The sign-out request could not be read."))?;
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    // RP-Initiated Logout 1.0 §2 and §4: the hub must have issued the hint (its
    // signature and issuer; expiry is not checked). One that does not verify is
    // refused: no sign-out and no redirection to the app.
    let hint = match get("id_token_hint") {
        None => None,
        Some(t) => match crate::oidc::verify_id_token_hint(&app, t).await {
            Ok(h) => Some(h),
            Err(why) => {
                tracing::info!(
                    reason = why,
                    "sign-out request with an id_token_hint that does not verify"
                );
                return Err(PageError::bad_request("The app's sign-out request could not be verified (its id_token_hint was not issued by this service), so nothing was done. You are still signed in here; sign out from your portal if you want to."));
            }
        },
    };
    let client_id = get("client_id")
        .map(str::to_string)
        .or_else(|| hint.as_ref().map(|h| h.client_id.clone()));
    if let (Some(h), Some(c)) = (&hint, get("client_id")) {
        if !h.issued_to(c) {
            return Err(PageError::bad_request(
                "client_id differs from the id_token_hint's audience.",
            ));
        }
    }
    // §3: post_logout_redirect_uri must be registered by the client it belongs to.
    let redirect = match get("post_logout_redirect_uri") {
        Some(uri) => {
            let Some(cid) = &client_id else {
                return Err(PageError::bad_request(
                    "post_logout_redirect_uri needs id_token_hint or client_id.",
                ));
            };
            match app.clients().get(app.store(), cid, app.clock().now_ms()).await {
                Ok(Some(c)) if c.settings.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                    let mut u = match url::Url::parse(uri) { Ok(u) => u, Err(_) => return Err(PageError::bad_request("Bad post_logout_redirect_uri.")) };
                    if let Some(state) = get("state") {
                        u.query_pairs_mut().append_pair("state", state);
                    }
                    Some(u.to_string())
                }
                _ => return Err(PageError::bad_request("The app asked to send you to an address it has not registered for after sign-out; it was not followed.")),
            }
        }
        None => None,
    };
    let session = browser.session.as_ref();
    let hint_matches = match (&hint, session) {
        (Some(h), Some(s)) => {
            h.sub == s.person_id && h.sid.as_deref().is_none_or(|sid| sid == s.id)
        }
        (Some(_), None) => true,
        _ => false,
    };
    let confirmed = method == Method::POST
        && get("confirm") == Some("yes")
        && browser.csrf_ok(&app, get("csrf"));
    if let Some(s) = session {
        if !(hint_matches || confirmed) {
            let carry: Vec<(String, String)> = params
                .iter()
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "id_token_hint" | "post_logout_redirect_uri" | "state" | "client_id"
                    )
                })
                .cloned()
                .collect();
            let ctx = minijinja::context! { lang => "en", csrf => browser.csrf(&app), carry => carry, done => false };
            return Ok(browser.finish(&app, page(&app, StatusCode::OK, "logout.html", ctx)));
        }
        super::sign_out(&app, &s.person_id, Some(&s.id), &browser.origin())
            .await
            .map_err(|e| {
                PageError::unavailable_as("Signing out failed; try again shortly.", e.description)
            })?;
    }
    let mut resp = match redirect {
        Some(to) => Redirect::to(&to).into_response(),
        None => page(
            &app,
            StatusCode::OK,
            "logout.html",
            minijinja::context! { lang => "en", done => true },
        ),
    };
    clear_session(&app, &mut resp);
    Ok(resp)
}
