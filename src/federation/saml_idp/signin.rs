//! A SAML AuthnRequest (or an IdP-initiated sign-in, profiles §4.1.5) as a pending
//! sign-in (`authn::PendingSignIn` continued as SAML): the sign-in pages and the
//! session checks (`authn::gate`) are the same as for OpenID Connect apps; the SAML
//! part ([`Pending`]) is read only here.

use serde::{Deserialize, Serialize};

use super::{Checked, Pending};
use crate::authn::{AuthnError, PendingSignIn, Protocol};

/// SAML's own part of the stored sign-in.
#[derive(Serialize, Deserialize)]
struct SamlPart {
    saml: Pending,
    /// Before issue 15 every pending sign-in was read as one OAuth-shaped request,
    /// which needs these keys: they are still written so that a replica running that
    /// release during a rolling upgrade can read the row. Never read here.
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    response_mode: String,
}

/// The checked request as a pending sign-in: ForceAuthn is `prompt=login`,
/// IsPassive is `prompt=none` (core §3.4.1), RequestedAuthnContext and the app's
/// `mfa_required` are `acr_values`.
pub fn pending_signin(c: Checked, now: i64) -> Result<PendingSignIn, AuthnError> {
    let mut p = PendingSignIn::new(Protocol::Saml, format!("saml:{}", c.pending.sp_id), now);
    if c.passive {
        p.prompt.push("none".to_string());
    }
    if c.force_authn {
        p.prompt.push("login".to_string());
    }
    p.login_hint = c.login_hint;
    p.acr_values = c.acr_values;
    set_pending(&mut p, c.pending)?;
    Ok(p)
}

/// The SAML part of a pending sign-in; `None` when it is not a SAML one.
pub fn pending_of(p: &PendingSignIn) -> Result<Option<Pending>, AuthnError> {
    if p.protocol != Protocol::Saml {
        return Ok(None);
    }
    Ok(Some(p.part::<SamlPart>()?.saml))
}

/// Replaces the SAML part (e.g. after sending the person to sign in again).
pub fn set_pending(p: &mut PendingSignIn, pending: Pending) -> Result<(), AuthnError> {
    let part = SamlPart {
        redirect_uri: pending.acs_url.clone(),
        scopes: Vec::new(),
        response_mode: "form_post".into(),
        saml: pending,
    };
    p.set_part(&part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_of_the_previous_release_reads_as_saml() {
        let row = r#"{"client_id":"saml:wiki","redirect_uri":"https://wiki.example/acs","scopes":[],"state":null,"nonce":null,"code_challenge":null,"response_mode":"form_post","prompt":["login"],"max_age":null,"login_hint":"ada","acr_values":null,"dpop_jkt":null,"created_at_ms":5,"saml":{"sp_id":"wiki","request_id":"_r1","acs_url":"https://wiki.example/acs","relay_state":"rs","name_id_format":"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent","subject":"ada","subject_relogin":false,"requested_contexts":[],"comparison":null}}"#;
        let p = PendingSignIn::from_json(serde_json::from_str(row).unwrap()).unwrap();
        let pending = pending_of(&p).unwrap().unwrap();
        assert_eq!(pending.sp_id, "wiki");
        assert_eq!(pending.request_id.as_deref(), Some("_r1"));
        assert_eq!(pending.subject.as_deref(), Some("ada"));
        assert_eq!(p.login_hint.as_deref(), Some("ada"));
        // Written again, it keeps the keys the previous release needs.
        let mut again = p.clone();
        set_pending(&mut again, pending).unwrap();
        let v = again.to_json().unwrap();
        assert_eq!(v["redirect_uri"], "https://wiki.example/acs");
        assert_eq!(v["response_mode"], "form_post");
        assert_eq!(v["scopes"], serde_json::json!([]));
        assert_eq!(v["client_id"], "saml:wiki");
    }
}
