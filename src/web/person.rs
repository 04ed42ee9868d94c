//! How pages name the signed-in person: a greeting, and the account an authenticator
//! app or a passkey shows.

use crate::directory::{DirectoryError, Person};
use crate::AppState;

/// The person's name for a page's header; empty when it cannot be read (the page
/// still works).
pub(crate) async fn display_name(app: &AppState, person_id: &str) -> String {
    match crate::directory::get_person(app.store(), person_id).await {
        Ok(p) => full_name(&p),
        Err(_) => String::new(),
    }
}

/// "Preferred-or-given family", as pages greet a person.
pub(crate) fn full_name(p: &Person) -> String {
    format!(
        "{} {}",
        p.preferred_name.as_deref().unwrap_or(&p.given_name),
        p.family_name
    )
}

/// What authenticators show for a person: (account name, display name). The account is
/// the username, else the e-mail address.
pub(crate) async fn account_label(
    app: &AppState,
    person_id: &str,
) -> Result<(String, String), DirectoryError> {
    let p = crate::directory::get_person(app.store(), person_id).await?;
    let account = p.username.clone().or(p.email.clone()).unwrap_or_default();
    Ok((account, full_name(&p)))
}
