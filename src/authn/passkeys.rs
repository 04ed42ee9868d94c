//! Passkeys (WebAuthn Level 3) through webauthn-rs: registered in the portal, used as
//! the second factor after a password, or alone (a discoverable credential names its
//! person). User verification is always required, so a passkey is two factors in one
//! (possession and a PIN or biometric, WebAuthn L3 §6.2.3), and phishing resistant:
//! the browser signs the origin (§7.2 step 9).

use base64::Engine;
use serde::Serialize;
use webauthn_rs::prelude::{
    CreationChallengeResponse, DiscoverableAuthentication, DiscoverableKey, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, Webauthn, WebauthnBuilder,
};

use webauthn_rs_proto::ResidentKeyRequirement;

use super::factors_repo::{self, PasskeyInsert, StoredPasskey};
use super::AuthnError;
use crate::audit::{Origin, Outcome};
use crate::config::Config;
use crate::store::{StoreError, Tx};
use crate::AppState;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;
const MAX_NAME: usize = 60;

/// The relying party: our origin and rp id (the issuer's host unless configured).
/// Browsers refuse an IP address as an rp id (WebAuthn L3 §5.1.3 step 8 wants a
/// domain), so under `http://127.0.0.1:…` passkeys are off and the pages say so.
pub struct Passkeys {
    webauthn: Option<Webauthn>,
    off_because: Option<String>,
}

impl Passkeys {
    pub fn new(config: &Config) -> Passkeys {
        match Self::relying_party(config) {
            Ok(webauthn) => Passkeys {
                webauthn: Some(webauthn),
                off_because: None,
            },
            Err(why) => {
                tracing::warn!(reason = %why, "passkeys are off: set server.issuer to a URL with a host name (e.g. https://sso.district.org or http://localhost:8080)");
                Passkeys {
                    webauthn: None,
                    off_because: Some(why),
                }
            }
        }
    }

    fn relying_party(config: &Config) -> Result<Webauthn, String> {
        let issuer = config.issuer();
        let origin = Url::parse(&issuer).map_err(|e| format!("server.issuer {issuer:?}: {e}"))?;
        let host = origin.host_str().unwrap_or_default().to_string();
        let rp_id = config.mfa.webauthn_rp_id.clone().unwrap_or(host);
        if rp_id.parse::<std::net::IpAddr>().is_ok() || rp_id.starts_with('[') {
            return Err(format!("the relying party id {rp_id} is an IP address"));
        }
        WebauthnBuilder::new(&rp_id, &origin)
            .and_then(|b| b.rp_name(&config.mfa.totp_issuer).build())
            .map_err(|e| format!("WebAuthn relying party {rp_id}: {e}"))
    }

    pub fn available(&self) -> bool {
        self.webauthn.is_some()
    }

    fn wa(&self) -> Result<&Webauthn, AuthnError> {
        self.webauthn.as_ref().ok_or_else(|| {
            AuthnError::Passkey(format!(
                "passkeys are off on this server ({})",
                self.off_because.as_deref().unwrap_or("not configured")
            ))
        })
    }
}

/// A registered passkey as the portal lists it.
#[derive(Debug, Clone, Serialize)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub last_used_at_ms: Option<i64>,
}

fn person_uuid(person_id: &str) -> Result<Uuid, AuthnError> {
    // Person ids are UUIDs; as the WebAuthn user handle they name no one outside the
    // hub (WebAuthn L3 §14.6.1: the handle must not hold personal information).
    Uuid::parse_str(person_id).map_err(|_| AuthnError::UnknownPerson(person_id.to_string()))
}

fn webauthn_err(e: impl std::fmt::Display) -> AuthnError {
    AuthnError::Passkey(e.to_string())
}

/// Starts registering a passkey for a signed-in person (one registration at a time).
pub async fn start_registration(
    app: &AppState,
    person_id: &str,
    user_name: &str,
    display_name: &str,
) -> Result<CreationChallengeResponse, AuthnError> {
    let existing = factors_repo::stored_passkeys(app.store(), person_id).await?;
    let exclude = existing
        .iter()
        .map(|s| s.passkey.cred_id().clone())
        .collect();
    let (mut ccr, state) = app
        .passkeys()
        .wa()?
        .start_passkey_registration(
            person_uuid(person_id)?,
            user_name,
            display_name,
            Some(exclude),
        )
        .map_err(webauthn_err)?;
    // A discoverable credential, so the passkey alone can sign in later (§5.4.6);
    // webauthn-rs asks for none by default. The authenticator's answer is not
    // checked: a non-discoverable key still works as a second factor.
    if let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
        sel.resident_key = Some(ResidentKeyRequirement::Required);
        sel.require_resident_key = true;
    }
    let state = serde_json::to_string(&state).map_err(webauthn_err)?;
    super::mfa::replace_challenge(app, "register", person_id, &state).await?;
    Ok(ccr)
}

/// Finishes a registration: the challenge is used up whatever the outcome.
pub async fn finish_registration(
    app: &AppState,
    person_id: &str,
    name: &str,
    credential: &RegisterPublicKeyCredential,
    origin: &Origin,
) -> Result<PasskeyView, AuthnError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(AuthnError::Passkey(format!(
            "give the passkey a name of 1 to {MAX_NAME} characters, e.g. \"Work laptop\""
        )));
    }
    let now = app.clock().now_ms();
    let mut tx = app.store().begin().await?;
    let state = factors_repo::take_registration_challenge(&mut tx, person_id, now).await?;
    let state: PasskeyRegistration = state
        .and_then(|s| serde_json::from_str(&s).ok())
        .ok_or(AuthnError::ChallengeExpired)?;
    let passkey = app
        .passkeys()
        .wa()?
        .finish_passkey_registration(credential, &state)
        .map_err(webauthn_err)?;
    let view = PasskeyView {
        id: crate::store::new_id(),
        name: name.to_string(),
        created_at_ms: now,
        last_used_at_ms: None,
    };
    let credential = serde_json::to_string(&passkey).map_err(webauthn_err)?;
    factors_repo::insert_passkey(
        &mut tx,
        &PasskeyInsert {
            id: &view.id,
            person_id,
            credential_id: &B64.encode(passkey.cred_id().as_ref()),
            name: &view.name,
            credential: &credential,
            created_at: now,
        },
    )
    .await?;
    super::factor_record::audit_factor(
        &mut tx,
        app,
        origin,
        "auth.passkey.add",
        Outcome::Success,
        person_id,
        &view.name,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(view)
}

pub async fn list(app: &AppState, person_id: &str) -> Result<Vec<PasskeyView>, AuthnError> {
    Ok(factors_repo::list_passkeys(app.store(), person_id).await?)
}

/// Removes one of the person's passkeys; false when there is no such passkey of theirs.
pub async fn remove(tx: &mut Tx, person_id: &str, id: &str) -> Result<bool, AuthnError> {
    Ok(factors_repo::delete_passkey(tx, person_id, id).await?)
}

/// The options for `navigator.credentials.get` when the person is known (second
/// factor); the state is kept in the sign-in's challenge row.
pub(super) async fn start_authentication(
    app: &AppState,
    person_id: &str,
) -> Result<Option<(RequestChallengeResponse, String)>, AuthnError> {
    let keys: Vec<Passkey> = factors_repo::stored_passkeys(app.store(), person_id)
        .await?
        .into_iter()
        .map(|s| s.passkey)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (rcr, state) = app
        .passkeys()
        .wa()?
        .start_passkey_authentication(&keys)
        .map_err(webauthn_err)?;
    let state = serde_json::to_string(&state).map_err(webauthn_err)?;
    Ok(Some((rcr, state)))
}

/// Checks an assertion against the state from `start_authentication`.
pub(super) async fn finish_authentication(
    app: &AppState,
    person_id: &str,
    state: &str,
    credential: &PublicKeyCredential,
) -> Result<(), AuthnError> {
    let state: PasskeyAuthentication =
        serde_json::from_str(state).map_err(|_| AuthnError::ChallengeExpired)?;
    let result = app
        .passkeys()
        .wa()?
        .finish_passkey_authentication(credential, &state)
        .map_err(webauthn_err)?;
    let cred_id = B64.encode(result.cred_id().as_ref());
    update_after_use(app, person_id, &cred_id, &result).await
}

/// Options for a passwordless sign-in: any discoverable passkey of this site.
pub(super) fn start_discoverable(
    app: &AppState,
) -> Result<(RequestChallengeResponse, String), AuthnError> {
    let (rcr, state) = app
        .passkeys()
        .wa()?
        .start_discoverable_authentication()
        .map_err(webauthn_err)?;
    let state = serde_json::to_string(&state).map_err(webauthn_err)?;
    Ok((rcr, state))
}

/// Finishes a passwordless sign-in: the credential names its person (user handle),
/// whose stored passkey must verify the signature. Returns the person id.
pub(super) async fn finish_discoverable(
    app: &AppState,
    state: &str,
    credential: &PublicKeyCredential,
) -> Result<String, AuthnError> {
    let state: DiscoverableAuthentication =
        serde_json::from_str(state).map_err(|_| AuthnError::ChallengeExpired)?;
    let wa = app.passkeys().wa()?;
    let (user, cred_id) = wa
        .identify_discoverable_authentication(credential)
        .map_err(webauthn_err)?;
    let cred_id = B64.encode(cred_id);
    let person_id = user.hyphenated().to_string();
    let stored = factors_repo::stored_passkeys(app.store(), &person_id).await?;
    let Some(passkey) = stored
        .iter()
        .map(|s| &s.passkey)
        .find(|p| B64.encode(p.cred_id().as_ref()) == cred_id)
    else {
        return Err(AuthnError::Passkey(
            "this passkey is not registered here (it may have been removed)".into(),
        ));
    };
    let result = wa
        .finish_discoverable_authentication(credential, state, &[DiscoverableKey::from(passkey)])
        .map_err(webauthn_err)?;
    update_after_use(app, &person_id, &cred_id, &result).await?;
    Ok(person_id)
}

/// Stores the new signature counter and backup state (WebAuthn L3 §7.2 steps 21-22),
/// read and written in one transaction under the passkey's row lock: two uses at
/// once cannot move the counter backwards, and a passkey removed meanwhile signs
/// nothing in.
async fn update_after_use(
    app: &AppState,
    person_id: &str,
    cred_id: &str,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), AuthnError> {
    let mut tx = app.store().begin().await?;
    app.store()
        .lock_row(&mut tx, "passkeys", "credential_id", cred_id)
        .await?;
    let Some(StoredPasskey { id, mut passkey }) =
        factors_repo::find_passkey_by_credential(&mut tx, person_id, cred_id).await?
    else {
        return Err(AuthnError::Passkey("this passkey was removed".into()));
    };
    passkey.update_credential(result);
    let credential = serde_json::to_string(&passkey).map_err(webauthn_err)?;
    factors_repo::set_passkey_used(&mut tx, &id, &credential, app.clock().now_ms()).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(())
}

pub async fn has_passkey(app: &AppState, person_id: &str) -> Result<bool, AuthnError> {
    Ok(factors_repo::has_passkey(app.store(), person_id).await?)
}
