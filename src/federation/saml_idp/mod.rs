//! The hub as a SAML 2.0 identity provider for downstream apps that speak only SAML
//! (SAML profiles §4.1, Web Browser SSO).
//!
//! 1. An app sends an AuthnRequest to `/saml/idp/sso` (Redirect or POST binding);
//!    `request::check` validates it against the app's metadata, or a portal tile
//!    starts an IdP-initiated sign-in (§4.1.5).
//! 2. The request waits in the store as an `authn::PendingSignIn` continued as SAML,
//!    its SAML part a `Pending` (`signin`): the sign-in, second-factor and password
//!    pages are the same as for OIDC apps, and so are the rules (`authn::gate`: MFA
//!    for privileged roles and for apps that require it, an active account).
//! 3. `answer` builds the signed Response the browser posts to the app's ACS.

mod attributes;
mod error;
#[cfg(test)]
mod escaping_tests;
pub(crate) mod http;
pub mod request;
mod response;
mod signin;
mod sp_metadata;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use error::SamlIdpError;
pub(crate) use http::continue_saml;
pub use request::{Checked, Pending, Received, Refused};
pub use signin::{pending_of, pending_signin, set_pending};
pub use sp_metadata::SpEntity;

use super::credentials::SpCredentials;
use crate::authn::mfa::Assurance;
use crate::authn::Session;
use crate::config::{Config, SamlSpConfig};
use crate::store::Store;
use crate::AppState;

/// Last good metadata copies share the upstream IdPs' table, under this prefix.
const STORE_PREFIX: &str = "sp:";

/// One registered downstream app and its current metadata.
pub struct RegisteredSp {
    pub config: SamlSpConfig,
    loaded: RwLock<Option<Arc<SpEntity>>>,
    next_refresh_ms: AtomicI64,
}

impl RegisteredSp {
    pub fn entity(&self) -> Option<Arc<SpEntity>> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, e: SpEntity) {
        let mut slot = match self.loaded.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = Some(Arc::new(e));
    }
}

/// The registry of downstream SAML apps and the hub's IdP identity.
pub struct SamlApps {
    creds: Option<SpCredentials>,
    sps: Vec<Arc<RegisteredSp>>,
    pub entity_id: String,
    pub sso_url: String,
    skew_ms: i64,
    request_max_age_ms: i64,
    lifetime_ms: i64,
}

impl SamlApps {
    pub fn new(config: &Config, creds: Option<SpCredentials>) -> SamlApps {
        let issuer = config.issuer();
        let cfg = &config.saml_apps;
        SamlApps {
            creds,
            sps: cfg
                .service_providers
                .iter()
                .map(|c| {
                    Arc::new(RegisteredSp {
                        config: c.clone(),
                        loaded: RwLock::new(None),
                        next_refresh_ms: AtomicI64::new(0),
                    })
                })
                .collect(),
            entity_id: format!("{issuer}/saml/idp/metadata"),
            sso_url: format!("{issuer}/saml/idp/sso"),
            skew_ms: config.federation.clock_skew_seconds * 1000,
            request_max_age_ms: cfg.request_max_age_seconds * 1000,
            lifetime_ms: cfg.assertion_lifetime_seconds * 1000,
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.sps.is_empty()
    }

    fn creds(&self) -> Result<&SpCredentials, SamlIdpError> {
        self.creds
            .as_ref()
            .ok_or_else(|| SamlIdpError::Credentials("no SAML app is configured".into()))
    }

    pub fn sp(&self, id: &str) -> Option<&Arc<RegisteredSp>> {
        self.sps.iter().find(|s| s.config.id == id)
    }

    /// The registered app with this (pinned) entity id, if its metadata is loaded.
    pub fn by_entity_id(&self, entity_id: &str) -> Option<(Arc<RegisteredSp>, Arc<SpEntity>)> {
        let sp = self.sps.iter().find(|s| s.config.entity_id == entity_id)?;
        Some((sp.clone(), sp.entity()?))
    }

    /// Portal tiles: apps that allow IdP-initiated sign-in (id, name).
    pub fn tiles(&self) -> Vec<(String, String)> {
        self.sps
            .iter()
            .filter(|s| s.config.idp_initiated && s.entity().is_some())
            .map(|s| (s.config.id.clone(), s.config.display_name.clone()))
            .collect()
    }

    /// The IdP metadata apps are configured from (valid a week, fresh on every GET).
    pub fn metadata(&self, now_ms: i64) -> Result<String, SamlIdpError> {
        response::idp_metadata(
            &self.entity_id,
            &self.sso_url,
            self.creds()?,
            now_ms + 7 * 86_400_000,
        )
    }

    /// Re-reads the apps' metadata whose time has come; a failed read keeps the copy
    /// in use, or falls back to the last good copy in the store.
    pub async fn refresh_due(&self, store: &Store, http: &reqwest::Client, now_ms: i64) {
        for sp in &self.sps {
            if sp.next_refresh_ms.load(Ordering::Relaxed) > now_ms {
                continue;
            }
            let c = &sp.config;
            sp.next_refresh_ms.store(
                now_ms + c.metadata_refresh_minutes as i64 * 60_000,
                Ordering::Relaxed,
            );
            let key = format!("{STORE_PREFIX}{}", c.id);
            let parsed = load_metadata(c, http, now_ms).await;
            match parsed {
                Ok((entity, xml)) => {
                    tracing::info!(sp = %c.id, entity = %entity.entity_id, "SAML app metadata loaded");
                    crate::ops::metrics::saml_metadata_loaded(&key, now_ms);
                    sp.set(entity);
                    if let Err(e) = super::metadata::save_last_good(store, &key, &xml, now_ms).await
                    {
                        tracing::warn!(sp = %c.id, error = %e, "keeping the app metadata in the store failed");
                    }
                }
                Err(e) => {
                    tracing::error!(sp = %c.id, error = %e, "SAML app metadata could not be loaded");
                    if sp.entity().is_some() {
                        continue;
                    }
                    sp.next_refresh_ms.store(now_ms + 60_000, Ordering::Relaxed);
                    if let Ok(Some((xml, _))) = super::metadata::last_good(store, &key).await {
                        if let Ok(entity) =
                            sp_metadata::parse(&xml, now_ms).and_then(|e| pinned(c, e))
                        {
                            tracing::warn!(sp = %c.id, "using the app's last good metadata from the store");
                            sp.set(entity);
                        }
                    }
                }
            }
        }
    }

    /// An IdP-initiated sign-in to this app (profiles §4.1.5): its default ACS, its
    /// configured RelayState, no InResponseTo.
    pub fn unsolicited(&self, sp_id: &str) -> Result<Checked, SamlIdpError> {
        let sp = self
            .sp(sp_id)
            .filter(|s| s.config.idp_initiated)
            .ok_or(SamlIdpError::UnknownSp)?;
        let entity = sp.entity().ok_or(SamlIdpError::MetadataUnavailable)?;
        let acs = entity
            .default_acs()
            .ok_or(SamlIdpError::MetadataUnavailable)?;
        let pending = Pending {
            sp_id: sp.config.id.clone(),
            request_id: None,
            acs_url: acs.url.clone(),
            relay_state: sp.config.default_relay_state.clone(),
            name_id_format: request::name_id_format(&sp.config).into(),
            subject: None,
            subject_relogin: false,
            requested_contexts: Vec::new(),
            comparison: None,
        };
        Ok(Checked {
            pending,
            force_authn: false,
            passive: false,
            acr_values: sp
                .config
                .mfa_required
                .then(|| crate::authn::mfa::ACR_MFA.to_string()),
            login_hint: None,
            remember_until_ms: None,
        })
    }
}

/// Reads an app's metadata from its file or URL and checks it: `serve` (at start and
/// on every refresh) and `check-config` both call this, so what one refuses the
/// other reports.
pub async fn load_metadata(
    c: &SamlSpConfig,
    http: &reqwest::Client,
    now_ms: i64,
) -> Result<(SpEntity, String), SamlIdpError> {
    let xml =
        super::metadata::fetch_from(c.metadata_file.as_deref(), c.metadata_url.as_deref(), http)
            .await
            .map_err(|e| SamlIdpError::BadMetadata(e.to_string()))?;
    let entity = sp_metadata::parse(&xml, now_ms).and_then(|e| pinned(c, e))?;
    Ok((entity, xml))
}

/// The entity id is pinned in the configuration: metadata naming another entity (a
/// wrong file, or a URL serving another app's metadata) is refused.
fn pinned(c: &SamlSpConfig, e: SpEntity) -> Result<SpEntity, SamlIdpError> {
    if e.entity_id == c.entity_id {
        Ok(e)
    } else {
        Err(SamlIdpError::BadMetadata(format!(
            "it describes the entity {:?}, not the configured entity_id {:?}; set entity_id to the app's entityID, or point the metadata source at this app's own metadata",
            e.entity_id, c.entity_id
        )))
    }
}

/// Records that a checked AuthnRequest starts a sign-in; false when its id was already
/// used by this app. Each request is answered once (the IdP's side of the one-time use
/// of SAML profiles §4.1.4.5, as Shibboleth's message replay check): a request copied
/// from someone's browser history or a proxy log cannot start a second sign-in.
pub async fn first_use(store: &Store, checked: &Checked) -> Result<bool, SamlIdpError> {
    let (Some(id), Some(until)) = (&checked.pending.request_id, checked.remember_until_ms) else {
        return Ok(true);
    };
    let fresh = sqlx::query(
        "INSERT INTO saml_idp_requests_seen (sp_id, request_id, expires_at) VALUES ($1, $2, $3)
         ON CONFLICT (sp_id, request_id) DO NOTHING",
    )
    .bind(&checked.pending.sp_id)
    .bind(id)
    .bind(until)
    .execute(store.writer())
    .await
    .map_err(crate::store::StoreError::from)?
    .rows_affected();
    Ok(fresh == 1)
}

/// The AuthnContextClassRef that says truthfully how the session was authenticated.
fn authn_context(session: &Session, issuer_https: bool) -> &'static str {
    if Assurance::of_amr(&session.amr) >= Assurance::Mfa {
        request::AC_REFEDS_MFA
    } else if session.amr.iter().any(|a| a == "pwd") {
        // PasswordProtectedTransport only when the password travelled over TLS.
        if issuer_https {
            request::AC_PASSWORD_PROTECTED
        } else {
            request::AC_PASSWORD
        }
    } else {
        request::AC_UNSPECIFIED
    }
}

/// What `answer` decided.
pub enum Answer {
    /// The signed Response.
    Response(String),
    /// A signed error status for the app (core §3.2.2.2 second-level code).
    Status(&'static str, &'static str),
    /// The app asked about someone other than the signed-in person (core §3.4.1.4).
    OtherSubject,
}

/// The AuthnContextClassRef to state: a class the app listed that the session
/// satisfies (core §3.3.2.2.1, `exact` and `maximum`), else the truthful one, which
/// the gate has already made strong enough for `minimum`/`better`. None: nothing the
/// app listed is true of this sign-in (status NoAuthnContext).
fn answer_context(
    pending: &Pending,
    session: &Session,
    issuer_https: bool,
) -> Option<&'static str> {
    let truthful = authn_context(session, issuer_https);
    let listed_only = matches!(
        pending.comparison.as_deref(),
        None | Some("exact") | Some("maximum")
    );
    if pending.requested_contexts.is_empty() || !listed_only {
        return Some(truthful);
    }
    let level = Assurance::of_amr(&session.amr);
    let pwd = session.amr.iter().any(|a| a == "pwd");
    let satisfied = |class: &str| -> Option<&'static str> {
        match class {
            request::AC_UNSPECIFIED => Some(request::AC_UNSPECIFIED),
            request::AC_PASSWORD if pwd => Some(request::AC_PASSWORD),
            request::AC_PASSWORD_PROTECTED if pwd && issuer_https => {
                Some(request::AC_PASSWORD_PROTECTED)
            }
            request::AC_REFEDS_MFA if level >= Assurance::Mfa => Some(request::AC_REFEDS_MFA),
            _ => None,
        }
    };
    pending.requested_contexts.iter().find_map(|c| satisfied(c))
}

/// The NameID of this person for this app: persistent (core §8.3.7: opaque, different
/// per app so apps cannot correlate people; derived, not stored, so every replica
/// gives the same one) or the email address, if exactly one person holds it.
async fn name_id_for(
    app: &AppState,
    sp: &RegisteredSp,
    format: &str,
    person: &crate::directory::Person,
) -> Result<Option<String>, SamlIdpError> {
    if format != request::NAMEID_EMAIL {
        let key = format!("saml-nameid\n{}\n{}", sp.config.entity_id, person.id);
        return Ok(Some(app.master_key().digest_secret(&key)));
    }
    let Some(email) = person.email.clone() else {
        return Ok(None);
    };
    // A family address shared by a guardian and a student must not make them one
    // account in an app that keys people by address.
    let holders = crate::directory::find_people_by_field(app.store(), "email", &email)
        .await
        .map_err(|e| SamlIdpError::Signing(format!("reading the directory: {e}")))?;
    Ok((holders.len() == 1 && holders[0].id == person.id).then_some(email))
}

/// The signed Response for a person who passed the gate, and the audit record.
pub async fn answer(
    app: &AppState,
    pending: &Pending,
    session: &Session,
) -> Result<Answer, SamlIdpError> {
    let apps = app.federation().saml_apps();
    let sp = apps.sp(&pending.sp_id).ok_or(SamlIdpError::UnknownSp)?;
    let entity = sp.entity().ok_or(SamlIdpError::MetadataUnavailable)?;
    let person = crate::directory::get_person(app.store(), &session.person_id)
        .await
        .map_err(|e| SamlIdpError::Signing(format!("reading the person: {e}")))?;
    let now = app.clock().now_ms();
    let Some(name_id) = name_id_for(app, sp, &pending.name_id_format, &person).await? else {
        return Ok(Answer::Status(
            "InvalidNameIDPolicy",
            "the person has no address of their own in the directory",
        ));
    };
    if pending.subject.as_ref().is_some_and(|s| *s != name_id) {
        return Ok(Answer::OtherSubject);
    }
    let issuer_https = app.issuer().starts_with("https://");
    let Some(ctx) = answer_context(pending, session, issuer_https) else {
        return Ok(Answer::Status(
            "NoAuthnContext",
            "the sign-in does not match the requested authentication context",
        ));
    };
    let attrs = attributes::release(app, &person, &sp.config.attributes).await?;
    // Core §2.7.2: a SessionIndex must not let apps correlate people either.
    let session_index = app.master_key().digest_secret(&format!(
        "saml-session\n{}\n{}",
        sp.config.entity_id, session.id
    ));
    let a = response::Assertion {
        idp_entity_id: apps.entity_id.clone(),
        sp_entity_id: entity.entity_id.clone(),
        acs_url: pending.acs_url.clone(),
        in_response_to: pending.request_id.clone(),
        now_ms: now,
        lifetime_ms: apps.lifetime_ms,
        name_id,
        name_id_format: pending.name_id_format.clone(),
        authn_instant_ms: session.auth_time_ms,
        session_index: session_index.chars().take(32).collect(),
        authn_context: ctx,
        attributes: attrs,
    };
    let creds = apps.creds()?.clone();
    let xml = tokio::task::spawn_blocking(move || response::success(&a, &creds))
        .await
        .map_err(|e| SamlIdpError::Signing(e.to_string()))??;
    audit_sso(app, session, pending, ctx, now).await?;
    crate::ops::metrics::saml_idp_event("response_issued");
    Ok(Answer::Response(xml))
}

/// A signed error Response for the app (when the app itself is trusted).
pub async fn failure(
    app: &AppState,
    pending: &Pending,
    top: &'static str,
    second: &'static str,
    message: &str,
) -> Result<String, SamlIdpError> {
    let apps = app.federation().saml_apps();
    let creds = apps.creds()?.clone();
    let (eid, acs, irt, msg) = (
        apps.entity_id.clone(),
        pending.acs_url.clone(),
        pending.request_id.clone(),
        message.to_string(),
    );
    let now = app.clock().now_ms();
    crate::ops::metrics::saml_idp_event(second);
    tokio::task::spawn_blocking(move || {
        response::failure(
            &response::Failure {
                idp_entity_id: &eid,
                acs_url: &acs,
                in_response_to: irt.as_deref(),
                now_ms: now,
                top,
                second,
                message: &msg,
            },
            &creds,
        )
    })
    .await
    .map_err(|e| SamlIdpError::Signing(e.to_string()))?
}

/// Who signed in to which app, with what: the access report FERPA/HIPAA audits ask for.
async fn audit_sso(
    app: &AppState,
    session: &Session,
    pending: &Pending,
    ctx: &str,
    now: i64,
) -> Result<(), SamlIdpError> {
    let origin = crate::audit::Origin {
        actor_kind: "person",
        actor_id: session.person_id.clone(),
        meta: Default::default(),
    };
    let mut tx = app.store().begin().await?;
    crate::audit::record(
        &mut tx,
        app.audit_key(),
        now,
        &origin,
        crate::audit::Entry {
            action: "saml.sso",
            outcome: crate::audit::Outcome::Success,
            target_kind: "saml_app",
            target_id: &pending.sp_id,
            details: serde_json::json!({
                "acs": pending.acs_url,
                "idp_initiated": pending.request_id.is_none(),
                "authn_context": ctx,
                "name_id_format": pending.name_id_format,
                "session": session.id,
            }),
        },
    )
    .await
    .map_err(|e| SamlIdpError::Signing(format!("audit: {e}")))?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}
