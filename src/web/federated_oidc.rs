//! The redirect URI of upstream OpenID Providers: `/login/oidc/{idp}/callback`. The
//! provider sends the browser here with a top-level GET, so the SameSite=Lax binding
//! cookie set when the sign-in began comes along and is checked before anything else.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::cookies::clear_federation_binding;
use super::Browser;
use crate::federation::{self, CallbackParams};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/login/oidc/{idp}/callback", get(callback))
}

/// The authorization response (OpenID Connect Core §3.1.2.5/§3.1.2.6). The binding
/// cookie is cleared once its request is used up; a callback that was not this
/// browser's (a link someone else made) leaves the browser's own sign-in alone.
async fn callback(
    State(app): State<AppState>,
    browser: Browser,
    Path(idp): Path<String>,
    Query(params): Query<CallbackParams>,
) -> Response {
    let origin = browser.origin();
    let done = federation::accept_oidc_callback(
        &app,
        &idp,
        &params,
        browser.federation_binding.as_deref(),
        &origin,
    )
    .await;
    let keep_binding = matches!(
        done,
        Err(federation::FederationError::OtherBrowser { .. } | federation::FederationError::Expired)
    );
    let mut resp = match done {
        Ok(done) => {
            crate::ops::metrics::federated_signin(&done.idp_id, "ok");
            super::signin::start_session(
                &app,
                &browser,
                &done.person_id,
                done.amr,
                &done.acr,
                done.auth_request.as_deref(),
            )
            .await
        }
        Err(e) => super::federated::failed(&app, &browser, &idp, e).await,
    };
    if !keep_binding {
        clear_federation_binding(&app, &mut resp);
    }
    resp
}
