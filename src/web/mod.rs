//! Pages for people, server-rendered: one layout, one stylesheet, templates embedded
//! in the binary (minijinja, HTML auto-escaped), every string from a message catalog.
//!
//! Two layers live here:
//! - **the page kit**, the files at this level: rendering ([`render`]), the one page
//!   error type ([`PageError`], [`error`]), the browser's cookies ([`Browser`]), the
//!   shared form bodies, the self-submitting form, and the start-up check of the
//!   templates. Protocol endpoints that answer a browser with a page (`oidc`'s
//!   authorization and end-session endpoints, `federation`'s SAML endpoints) use the
//!   kit, and only the kit;
//! - **the pages**, by purpose: [`signin`] (sign-in, account choice, consent, upstream
//!   IdPs, passwordless), [`mfa`] (the second step and setting up a first factor at
//!   sign-in) and [`portal`] (the signed-in person's own pages). Room is kept for
//!   `admin/` and `compliance/`.
//!
//! Pages call capabilities (`authn`, `oidc`, `federation`, `directory`…); they hold no
//! SQL and write no audit rows.

pub(crate) mod address;
mod assets;
mod cookies;
pub(crate) mod error;
mod form_post;
pub(crate) mod forms;
mod mfa;
pub(crate) mod person;
mod portal;
pub(crate) mod render;
pub(crate) mod signin;
mod template_check;

use axum::routing::get;
use axum::Router;

use crate::AppState;

pub(crate) use cookies::clear_session;
pub use cookies::Browser;
pub use error::error_page;
pub(crate) use error::{sentence, JsonError, PageError};
pub(crate) use form_post::form_post_page;
pub(crate) use render::page;
pub use render::{Web, WebError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/portal") }),
        )
        .merge(assets::router())
        .merge(signin::router())
        .merge(mfa::router())
        .merge(portal::router())
}
