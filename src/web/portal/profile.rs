//! The person's profile: who the directory says they are, where, and in which roles.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::signed_in;
use crate::web::person::display_name;
use crate::web::{page, Browser, PageError};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/portal", get(profile))
}

async fn profile(State(app): State<AppState>, browser: Browser) -> Result<Response, PageError> {
    let session = signed_in(&browser)?;
    let person = crate::directory::get_person(app.store(), &session.person_id)
        .await
        .map_err(PageError::page_unavailable)?;
    let mut affiliations = Vec::new();
    for a in &person.affiliations {
        let org = crate::directory::get_org(app.store(), &a.org_id)
            .await
            .map(|o| o.name)
            .unwrap_or_else(|_| a.org_sourced_id.clone());
        affiliations.push(minijinja::context! { org => org, role => a.role, primary => a.primary });
    }
    let mut roles = Vec::new();
    if let Ok(list) = crate::authz::list_assignments(
        app.store(),
        &crate::authz::Subject::Person(person.id.clone()),
    )
    .await
    {
        for a in list {
            let org = match &a.org_id {
                Some(id) => crate::directory::get_org(app.store(), id)
                    .await
                    .map(|o| format!(" ({})", o.name))
                    .unwrap_or_default(),
                None => String::new(),
            };
            roles.push(format!("{}{org}", a.role));
        }
    }
    let name = display_name(&app, &person.id).await;
    let ctx = minijinja::context! {
        lang => "en", nav => "profile", person_name => name, person => minijinja::Value::from_serialize(&person),
        affiliations => affiliations, roles => roles,
    };
    Ok(browser.finish(&app, page(&app, StatusCode::OK, "profile.html", ctx)))
}
