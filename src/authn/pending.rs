//! The pending sign-in: an app's request (an OpenID Connect authorization request or
//! a SAML AuthnRequest) kept in the store while the person signs in, so any replica
//! may serve the next step. Pushed requests (RFC 9126) are kept here too.
//!
//! Authentication reads only what every protocol's sign-in needs ([`PendingSignIn`]:
//! the app, `prompt`, `max_age`, the login hint, `acr_values`, the expected person)
//! and which protocol answers the app; the protocol's own part is opaque JSON that
//! only that protocol reads (`oidc::AuthRequest`, `federation::saml_idp`).
//!
//! The handle given to the browser or the client is random; the store keeps only its
//! keyed digest. A request the browser sees is bound to that browser (issue 14): its
//! row keeps the keyed digest of the browser's binding cookie (`web::cookies`), and
//! every step reads it through [`load_bound_pending`], so someone else holding the
//! handle (it is in the `/login` and `/consent` URLs) can neither finish nor change it.
//!
//! The stored form (`auth_requests.params`) is one flat JSON object: the common keys
//! below beside the protocol's own, and a SAML sign-in carries its part under `saml`.
//! That is the form rows had before the pending sign-in left `oidc/`, so requests in
//! flight during a rolling upgrade keep working on either release.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AuthnError;
use crate::AppState;

/// The protocol that answers the app once the person is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenID Connect / OAuth 2.0: a code (or an error) back to the client.
    Oidc,
    /// SAML 2.0 Web Browser SSO (profiles §4.1): a Response posted to the app's ACS.
    Saml,
}

/// The key under which a SAML sign-in keeps its part; its presence is what tells a
/// stored SAML sign-in from an OpenID Connect one.
const SAML_KEY: &str = "saml";

/// A pending sign-in for an app, in any protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingSignIn {
    /// The app: an OAuth `client_id`, or `saml:<app id>` (stored as `client_id`).
    pub app_id: String,
    /// OIDC Core §3.1.2.1 `prompt` (`none`, `login`, `consent`, `select_account`); a
    /// SAML request's IsPassive is `none` and its ForceAuthn `login`.
    pub prompt: Vec<String>,
    /// The longest time since the person last authenticated, in seconds.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// Authentication context classes asked for (`acr_values`, or a SAML
    /// RequestedAuthnContext mapped to them).
    pub acr_values: Option<String>,
    /// The person the app expects (OIDC Core §3.1.2.1 `id_token_hint`, §5.5.1 `sub`
    /// by value): a session of someone else does not answer until the person signs
    /// in again.
    pub expected_sub: Option<String>,
    pub created_at_ms: i64,
    pub protocol: Protocol,
    /// The protocol's own keys, which authentication never reads.
    part: Map<String, Value>,
}

/// The common keys, as stored.
#[derive(Serialize, Deserialize)]
struct Common {
    client_id: String,
    #[serde(default)]
    prompt: Vec<String>,
    #[serde(default)]
    max_age: Option<i64>,
    #[serde(default)]
    login_hint: Option<String>,
    #[serde(default)]
    acr_values: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expected_sub: Option<String>,
    created_at_ms: i64,
}

const COMMON_KEYS: [&str; 7] = [
    "client_id",
    "prompt",
    "max_age",
    "login_hint",
    "acr_values",
    "expected_sub",
    "created_at_ms",
];

/// The protocol of a stored sign-in: SAML when it carries a SAML part.
fn protocol_of(part: &Map<String, Value>) -> Protocol {
    match part.get(SAML_KEY) {
        Some(v) if !v.is_null() => Protocol::Saml,
        _ => Protocol::Oidc,
    }
}

/// What the session checks (`authn::gate`) need of a sign-in.
#[derive(Debug, Clone, Copy)]
pub struct Demands<'a> {
    pub prompt: &'a [String],
    pub max_age: Option<i64>,
    pub acr_values: Option<&'a str>,
    pub expected_sub: Option<&'a str>,
}

impl Demands<'_> {
    pub fn has_prompt(&self, p: &str) -> bool {
        self.prompt.iter().any(|x| x == p)
    }
}

impl PendingSignIn {
    /// The stored form: a flat JSON object.
    pub fn from_json(value: Value) -> Result<PendingSignIn, AuthnError> {
        let Value::Object(mut part) = value else {
            return Err(AuthnError::PendingSignIn(
                "a pending sign-in is not a JSON object".into(),
            ));
        };
        let common: Common = serde_json::from_value(Value::Object(part.clone()))
            .map_err(|e| AuthnError::PendingSignIn(e.to_string()))?;
        for k in COMMON_KEYS {
            part.remove(k);
        }
        let protocol = protocol_of(&part);
        Ok(PendingSignIn {
            app_id: common.client_id,
            prompt: common.prompt,
            max_age: common.max_age,
            login_hint: common.login_hint,
            acr_values: common.acr_values,
            expected_sub: common.expected_sub,
            created_at_ms: common.created_at_ms,
            protocol,
            part,
        })
    }

    /// The stored form: the protocol's keys and the common ones, in one object.
    pub fn to_json(&self) -> Result<Value, AuthnError> {
        let common = Common {
            client_id: self.app_id.clone(),
            prompt: self.prompt.clone(),
            max_age: self.max_age,
            login_hint: self.login_hint.clone(),
            acr_values: self.acr_values.clone(),
            expected_sub: self.expected_sub.clone(),
            created_at_ms: self.created_at_ms,
        };
        let Value::Object(common) =
            serde_json::to_value(common).map_err(|e| AuthnError::PendingSignIn(e.to_string()))?
        else {
            return Err(AuthnError::PendingSignIn(
                "the common part is not an object".into(),
            ));
        };
        let mut out = self.part.clone();
        out.extend(common);
        Ok(Value::Object(out))
    }

    /// A new pending sign-in for `app_id`, continued as `protocol`; the protocol
    /// sets its own part ([`PendingSignIn::set_part`]) and the demands.
    pub fn new(protocol: Protocol, app_id: String, created_at_ms: i64) -> PendingSignIn {
        PendingSignIn {
            app_id,
            prompt: Vec::new(),
            max_age: None,
            login_hint: None,
            acr_values: None,
            expected_sub: None,
            created_at_ms,
            protocol,
            part: Map::new(),
        }
    }

    /// Replaces the protocol's own part: `part` serialises to a JSON object, which
    /// for SAML holds the `saml` key (how a stored SAML sign-in is told apart).
    pub fn set_part<T: Serialize>(&mut self, part: &T) -> Result<(), AuthnError> {
        let Value::Object(mut map) =
            serde_json::to_value(part).map_err(|e| AuthnError::PendingSignIn(e.to_string()))?
        else {
            return Err(AuthnError::PendingSignIn(
                "a protocol's part of a pending sign-in is not a JSON object".into(),
            ));
        };
        for k in COMMON_KEYS {
            map.remove(k);
        }
        if protocol_of(&map) != self.protocol {
            return Err(AuthnError::PendingSignIn(
                "a protocol's part does not match the protocol that continues the sign-in".into(),
            ));
        }
        self.part = map;
        Ok(())
    }

    /// The protocol's own part, read as that protocol's type.
    pub fn part<T: serde::de::DeserializeOwned>(&self) -> Result<T, AuthnError> {
        serde_json::from_value(Value::Object(self.part.clone()))
            .map_err(|e| AuthnError::PendingSignIn(e.to_string()))
    }

    pub fn demands(&self) -> Demands<'_> {
        Demands {
            prompt: &self.prompt,
            max_age: self.max_age,
            acr_values: self.acr_values.as_deref(),
            expected_sub: self.expected_sub.as_deref(),
        }
    }
}

/// A pushed request (`pushed`), or a browser's request not yet bound to a browser:
/// one that came by a cross-site POST, which carries no SameSite=Lax cookie, and is
/// claimed by the same-site GET it is sent on to ([`claim_pending`]).
pub async fn save_pending(
    app: &AppState,
    req: &PendingSignIn,
    pushed: bool,
) -> Result<String, AuthnError> {
    insert_pending(app, req, pushed, None).await
}

/// A browser's request, bound to the browser whose binding cookie is `binding`.
pub async fn save_bound_pending(
    app: &AppState,
    req: &PendingSignIn,
    binding: &str,
) -> Result<String, AuthnError> {
    let digest = binding_digest(app, binding);
    insert_pending(app, req, false, Some(&digest)).await
}

/// The keyed digest of a browser binding (the store never sees the cookie itself).
fn binding_digest(app: &AppState, binding: &str) -> String {
    app.master_key()
        .digest_secret(&format!("browser-binding:{binding}"))
}

/// A handle is a short random token: an empty or overlong one is not ours, and is
/// answered as unknown without touching the store.
fn plausible(handle: &str) -> bool {
    !handle.is_empty() && handle.len() <= 100
}

async fn insert_pending(
    app: &AppState,
    req: &PendingSignIn,
    pushed: bool,
    browser_digest: Option<&str>,
) -> Result<String, AuthnError> {
    let now = app.clock().now_ms();
    let cfg = &app.config().oauth;
    let ttl = if pushed {
        cfg.par_ttl_seconds
    } else {
        cfg.auth_request_ttl_seconds
    };
    let params = req.to_json()?.to_string();
    let handle = crate::crypto::random_token(24);
    let mut tx = app.store().begin().await?;
    sqlx::query("INSERT INTO auth_requests (id, client_id, params, pushed, created_at, expires_at, browser_digest) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(app.master_key().digest_secret(&handle))
        .bind(&req.app_id)
        .bind(params)
        .bind(i64::from(pushed))
        .bind(now)
        .bind(now + ttl * 1000)
        .bind(browser_digest)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(handle)
}

fn parse(text: &str) -> Result<PendingSignIn, AuthnError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| AuthnError::PendingSignIn(e.to_string()))?;
    PendingSignIn::from_json(value)
}

/// A live request by handle; `pushed` selects PAR requests (single use: taking one
/// deletes it, RFC 9126 §4). For a browser's request this does not check the
/// binding: pages use [`load_bound_pending`].
pub async fn load_pending(
    app: &AppState,
    handle: &str,
    pushed: bool,
) -> Result<Option<PendingSignIn>, AuthnError> {
    if !plausible(handle) {
        return Ok(None);
    }
    let id = app.master_key().digest_secret(handle);
    let now = app.clock().now_ms();
    // A pushed request is taken and deleted in one statement: two replicas cannot
    // both use it (RFC 9126 §4: single use).
    let sql = if pushed {
        "DELETE FROM auth_requests WHERE id = $1 AND pushed = 1 AND expires_at > $2 RETURNING params"
    } else {
        "SELECT params FROM auth_requests WHERE id = $1 AND pushed = 0 AND expires_at > $2"
    };
    let pool = if pushed {
        app.store().writer()
    } else {
        app.store().reader()
    };
    let row: Option<String> = sqlx::query_scalar(sql)
        .bind(&id)
        .bind(now)
        .fetch_optional(pool)
        .await?;
    row.as_deref().map(parse).transpose()
}

/// A browser's pending sign-in, as this browser may see it.
#[derive(Debug)]
pub enum BoundPending {
    Found(Box<PendingSignIn>),
    /// Expired, finished or never issued.
    Gone,
    /// Live, but started in another browser (or one whose cookies were cleared since),
    /// or not yet claimed: refused, and left as it is for its own browser.
    OtherBrowser,
}

/// A live (not pushed) request, if it is bound to this browser's `binding` cookie.
/// The digests are compared in constant time.
pub async fn load_bound_pending(
    app: &AppState,
    handle: &str,
    binding: Option<&str>,
) -> Result<BoundPending, AuthnError> {
    if !plausible(handle) {
        return Ok(BoundPending::Gone);
    }
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT params, browser_digest FROM auth_requests WHERE id = $1 AND pushed = 0 AND expires_at > $2",
    )
    .bind(app.master_key().digest_secret(handle))
    .bind(app.clock().now_ms())
    .fetch_optional(app.store().reader())
    .await?;
    let Some((params, stored)) = row else {
        return Ok(BoundPending::Gone);
    };
    let ours = match (binding, stored.as_deref()) {
        (Some(b), Some(stored)) => {
            crate::crypto::constant_time_eq(binding_digest(app, b).as_bytes(), stored.as_bytes())
        }
        _ => false,
    };
    if !ours {
        return Ok(BoundPending::OtherBrowser);
    }
    Ok(BoundPending::Found(Box::new(parse(&params)?)))
}

/// Binds a request saved unbound (see [`save_pending`]) to this browser; one
/// statement, so only the first browser to arrive gets it. False when it is gone or
/// already bound (to this browser or another: the caller then loads it bound).
pub async fn claim_pending(
    app: &AppState,
    handle: &str,
    binding: &str,
) -> Result<bool, AuthnError> {
    if !plausible(handle) {
        return Ok(false);
    }
    let done = sqlx::query(
        "UPDATE auth_requests SET browser_digest = $1 WHERE id = $2 AND pushed = 0 AND browser_digest IS NULL AND expires_at > $3",
    )
    .bind(binding_digest(app, binding))
    .bind(app.master_key().digest_secret(handle))
    .bind(app.clock().now_ms())
    .execute(app.store().writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores the changed request (a step done: `prompt`, `max_age`, the protocol's part).
pub async fn update_pending(
    app: &AppState,
    handle: &str,
    req: &PendingSignIn,
) -> Result<(), AuthnError> {
    sqlx::query("UPDATE auth_requests SET params = $1 WHERE id = $2")
        .bind(req.to_json()?.to_string())
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await?;
    Ok(())
}

/// The request is answered (or refused): it cannot be used again.
pub async fn drop_pending(app: &AppState, handle: &str) -> Result<(), AuthnError> {
    sqlx::query("DELETE FROM auth_requests WHERE id = $1")
        .bind(app.master_key().digest_secret(handle))
        .execute(app.store().writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An OpenID Connect request as the release before this module wrote it.
    const OIDC_ROW: &str = r#"{"client_id":"app1","redirect_uri":"https://app.example/cb","scopes":["openid","profile"],"state":"s1","nonce":"n1","code_challenge":"abc","response_mode":"query","prompt":["login"],"max_age":300,"login_hint":"ada","acr_values":null,"dpop_jkt":null,"created_at_ms":1700000000000,"expected_sub":"p-1","claim_scopes":["email"]}"#;

    /// A SAML AuthnRequest as the release before this module wrote it.
    const SAML_ROW: &str = r#"{"client_id":"saml:wiki","redirect_uri":"https://wiki.example/acs","scopes":[],"state":null,"nonce":null,"code_challenge":null,"response_mode":"form_post","prompt":["none"],"max_age":null,"login_hint":null,"acr_values":"urn:hms-ach:acr:mfa","dpop_jkt":null,"created_at_ms":1700000000001,"saml":{"sp_id":"wiki","request_id":"_r1","acs_url":"https://wiki.example/acs","relay_state":"rs","name_id_format":"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent","subject":null,"subject_relogin":false,"requested_contexts":[],"comparison":null}}"#;

    #[test]
    fn reads_an_oidc_row_of_the_previous_release() {
        let p = parse(OIDC_ROW).unwrap();
        assert_eq!(p.protocol, Protocol::Oidc);
        assert_eq!(p.app_id, "app1");
        assert_eq!(p.prompt, vec!["login".to_string()]);
        assert_eq!(p.max_age, Some(300));
        assert_eq!(p.login_hint.as_deref(), Some("ada"));
        assert_eq!(p.expected_sub.as_deref(), Some("p-1"));
        assert_eq!(p.created_at_ms, 1_700_000_000_000);
        // Written back, the row is the same object (every key kept, none added).
        let before: Value = serde_json::from_str(OIDC_ROW).unwrap();
        assert_eq!(p.to_json().unwrap(), before);
    }

    #[test]
    fn reads_a_saml_row_of_the_previous_release() {
        let p = parse(SAML_ROW).unwrap();
        assert_eq!(p.protocol, Protocol::Saml);
        assert_eq!(p.app_id, "saml:wiki");
        assert!(p.demands().has_prompt("none"));
        assert_eq!(p.acr_values.as_deref(), Some("urn:hms-ach:acr:mfa"));
        let part: Value = p.part().unwrap();
        assert_eq!(part["saml"]["sp_id"], "wiki");
        assert!(
            part.get("client_id").is_none(),
            "common keys are not the part's"
        );
        let before: Value = serde_json::from_str(SAML_ROW).unwrap();
        assert_eq!(p.to_json().unwrap(), before);
    }

    #[test]
    fn a_changed_prompt_is_what_is_stored() {
        let mut p = parse(OIDC_ROW).unwrap();
        p.prompt.clear();
        p.max_age = None;
        p.expected_sub = None;
        let v = p.to_json().unwrap();
        assert_eq!(v["prompt"], serde_json::json!([]));
        assert!(v["max_age"].is_null());
        assert!(v.get("expected_sub").is_none());
        assert_eq!(v["redirect_uri"], "https://app.example/cb");
        assert!(parse("[1]").is_err());
    }

    #[test]
    fn a_part_must_match_its_protocol() {
        let mut p = PendingSignIn::new(Protocol::Saml, "saml:wiki".into(), 1);
        assert!(p
            .set_part(&serde_json::json!({ "redirect_uri": "x" }))
            .is_err());
        p.set_part(&serde_json::json!({ "saml": { "sp_id": "wiki" }, "client_id": "no" }))
            .unwrap();
        let v = p.to_json().unwrap();
        assert_eq!(v["client_id"], "saml:wiki", "the common keys are authn's");
        let back = PendingSignIn::from_json(v).unwrap();
        assert_eq!(back, p);
        assert!(PendingSignIn::new(Protocol::Oidc, "a".into(), 1)
            .set_part(&serde_json::json!([]))
            .is_err());
    }
}
