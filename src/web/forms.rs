//! The bodies the pages' forms and script post, shared by every page that takes
//! them. Each carries the CSRF token the page was rendered with (`Browser::csrf_ok`).

use serde::Deserialize;
use webauthn_rs::prelude::RegisterPublicKeyCredential;

/// A form (or JSON body) with nothing but its CSRF token.
#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    pub csrf: Option<String>,
}

/// A one-time code: an authenticator app's (`kind` = `totp`, the default) or a
/// recovery code (`kind` = `recovery`).
#[derive(Deserialize)]
pub(crate) struct CodeForm {
    pub csrf: Option<String>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub code: String,
}

/// A new passkey, as the browser created it, and the name the person gave it.
#[derive(Deserialize)]
pub(crate) struct RegistrationBody {
    pub csrf: Option<String>,
    #[serde(default)]
    pub name: String,
    pub credential: RegisterPublicKeyCredential,
}
