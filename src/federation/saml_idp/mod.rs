//! The hub as a SAML 2.0 identity provider for downstream apps that speak only SAML
//! (SAML profiles §4.1, Web Browser SSO).
//!
//! 1. An app sends an AuthnRequest to `/saml/idp/sso` (Redirect or POST binding);
//!    `request::check` validates it against the app's metadata, or a portal tile
//!    starts an IdP-initiated sign-in (§4.1.5).
//! 2. The request waits in the store as an `oidc::AuthRequest` carrying a `Pending`:
//!    the sign-in, second-factor and password pages are the same as for OIDC apps,
//!    and so are the rules (`oidc::gate`: MFA for privileged roles and for apps that
//!    require it, an active account).
//! 3. `answer` builds the signed Response the browser posts to the app's ACS.

mod attributes;
mod error;
pub mod request;
mod response;
mod sp_metadata;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use error::SamlIdpError;
pub use request::{Checked, Pending, Received, Refused};
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

    /// The registered app with this entity id, if its metadata is loaded.
    pub fn by_entity_id(&self, entity_id: &str) -> Option<(Arc<RegisteredSp>, Arc<SpEntity>)> {
        self.sps.iter().find_map(|s| {
            let e = s.entity()?;
            (e.entity_id == entity_id).then(|| (s.clone(), e))
        })
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
        Ok(response::idp_metadata(
            &self.entity_id,
            &self.sso_url,
            self.creds()?,
            now_ms + 7 * 86_400_000,
        ))
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
            let fetched = super::metadata::fetch_from(
                c.metadata_file.as_deref(),
                c.metadata_url.as_deref(),
                http,
            )
            .await
            .map_err(|e| SamlIdpError::BadMetadata(e.to_string()));
            match fetched.and_then(|xml| sp_metadata::parse(&xml, now_ms).map(|e| (e, xml))) {
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
                        if let Ok(entity) = sp_metadata::parse(&xml, now_ms) {
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
        })
    }
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

/// The signed Response for a person who passed the gate, and the audit record.
pub async fn answer(
    app: &AppState,
    pending: &Pending,
    session: &Session,
) -> Result<Result<String, String>, SamlIdpError> {
    let apps = app.federation().saml_apps();
    let sp = apps.sp(&pending.sp_id).ok_or(SamlIdpError::UnknownSp)?;
    let entity = sp.entity().ok_or(SamlIdpError::MetadataUnavailable)?;
    let person = crate::directory::get_person(app.store(), &session.person_id)
        .await
        .map_err(|e| SamlIdpError::Signing(format!("reading the person: {e}")))?;
    let now = app.clock().now_ms();
    let master = app.master_key();
    // Core §8.3.7: persistent ids are opaque and differ per app, so apps cannot
    // correlate people; derived, not stored, so every replica gives the same one.
    let name_id = if pending.name_id_format == request::NAMEID_EMAIL {
        match person.email.clone() {
            Some(e) => e,
            None => {
                return Ok(Err(
                    "the person has no email address in the directory".into()
                ))
            }
        }
    } else {
        master.digest_secret(&format!("saml-nameid\n{}\n{}", entity.entity_id, person.id))
    };
    let attrs = attributes::release(app, &person, &sp.config.attributes).await?;
    let session_index = master.digest_secret(&format!("saml-session\n{}", session.id));
    let issuer_https = app.issuer().starts_with("https://");
    let ctx = authn_context(session, issuer_https);
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
    Ok(Ok(xml))
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
        app.store().audit_key(),
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
