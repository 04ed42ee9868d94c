//! Federation: people sign in at the district's own identity providers (SAML 2.0 IdPs,
//! and OpenID Providers in `oidc_rp`) and the hub turns that into its own session, so
//! every downstream app trusts the hub.
//!
//! The SAML round trip (SAML profiles §4.1, Web Browser SSO):
//! 1. `begin_signin`: a pending AuthnRequest is stored (bound to a random value in a
//!    cookie of this browser) and the browser is redirected to the IdP.
//! 2. `accept_response`: the IdP POSTs a Response to our ACS. It is verified, the
//!    request is used up and the assertion id recorded in one transaction, the person
//!    is found (linking), and a single-use handle is stored.
//! 3. `complete_signin`: the browser follows a same-site redirect with the handle;
//!    its cookie must match the request's (no login CSRF), then the session starts.

mod check;
mod credentials;
mod error;
mod http;
mod linking;
mod metadata;
mod oidc_rp;
mod pending;
mod saml_encrypted;
#[doc(hidden)]
pub mod saml_fixture;
pub mod saml_idp;
pub mod saml_response;
mod saml_sp;
mod xml_guard;
mod xml_tree;
mod xml_writer;
mod xmlenc;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use check::{check_metadata, MetadataProblem};
pub use credentials::SpCredentials;
pub use error::{FederationError, IdTokenRefusal};
pub(crate) use http::{failure_page, router, throttle};
pub use oidc_rp::{
    begin as begin_oidc_signin, callback as accept_oidc_callback, CallbackParams, OidcIdp,
};

use crate::audit::Origin;
use crate::config::{Config, SamlIdpConfig};
use crate::crypto::{constant_time_eq, random_bytes, sha256_hex, MasterKey};
use crate::store::{Store, StoreError};
use crate::AppState;

/// A federated sign-in without a second factor asserted by the IdP.
pub const ACR_FEDERATED: &str = "urn:hms-ach:acr:federated";
/// Any sign-in with two factors (here: the IdP said so in its AuthnContext).
pub const ACR_MFA: &str = "urn:hms-ach:acr:mfa";
/// A verified sign-in waits this long for its browser to come back.
const HANDOFF_TTL_MS: i64 = 120_000;

/// One configured upstream SAML IdP and its current metadata.
pub struct SamlIdp {
    pub config: SamlIdpConfig,
    /// Our SP entity id for this IdP (also where our metadata is published).
    pub entity_id: String,
    pub acs_url: String,
    loaded: RwLock<Option<Arc<metadata::Loaded>>>,
    next_refresh_ms: AtomicI64,
}

impl SamlIdp {
    fn loaded(&self) -> Option<Arc<metadata::Loaded>> {
        match self.loaded.read() {
            Ok(l) => l.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, l: metadata::Loaded) {
        let mut slot = match self.loaded.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        *slot = Some(Arc::new(l));
    }

    pub fn is_ready(&self) -> bool {
        self.loaded().is_some()
    }
}

/// Our SP entity id and ACS URL for one upstream IdP.
fn sp_endpoints(issuer: &str, idp_id: &str) -> (String, String) {
    (
        format!("{issuer}/saml/sp/{idp_id}"),
        format!("{issuer}/saml/sp/{idp_id}/acs"),
    )
}

/// The client that reads metadata URLs. No redirects: one could lead from the https
/// URL we checked to plain http.
fn metadata_http() -> Result<reqwest::Client, FederationError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| FederationError::Credentials(format!("HTTP client: {e}")))
}

/// The hub's federation state: its SAML key pair and the configured IdPs.
pub struct Federation {
    creds: Option<SpCredentials>,
    idps: Vec<Arc<SamlIdp>>,
    oidc: Vec<Arc<OidcIdp>>,
    http: reqwest::Client,
    upstream: oidc_rp::UpstreamHttp,
    skew_seconds: i64,
    /// xmlsec runs on blocking threads; a flood of Responses must not take them all.
    verify_slots: tokio::sync::Semaphore,
    /// Downstream SAML apps (the hub as their IdP).
    saml_apps: saml_idp::SamlApps,
}

impl Federation {
    /// Loads the key pair (only when an IdP is configured) and every IdP's metadata.
    /// An IdP whose metadata cannot be read is logged and left unavailable (its button
    /// says so), rather than stopping the hub for everyone else.
    pub async fn start(
        config: &Config,
        store: &Store,
        master: &MasterKey,
        now_ms: i64,
    ) -> Result<Federation, FederationError> {
        let issuer = config.issuer();
        let fed = &config.federation;
        // One key pair signs our AuthnRequests (SP) and our Responses (IdP).
        let creds = if fed.saml_idps.is_empty() && config.saml_apps.service_providers.is_empty() {
            None
        } else {
            Some(SpCredentials::load(fed, store, master, &issuer, now_ms).await?)
        };
        let http = metadata_http()?;
        let upstream = oidc_rp::UpstreamHttp::new()
            .map_err(|e| FederationError::Credentials(format!("HTTP client: {e}")))?;
        let oidc = fed
            .oidc_idps
            .iter()
            .map(|c| OidcIdp::new(c, &issuer).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let idps = fed
            .saml_idps
            .iter()
            .map(|c| {
                let (entity_id, acs_url) = sp_endpoints(&issuer, &c.id);
                Arc::new(SamlIdp {
                    entity_id,
                    acs_url,
                    config: c.clone(),
                    loaded: RwLock::new(None),
                    next_refresh_ms: AtomicI64::new(0),
                })
            })
            .collect();
        let saml_apps = saml_idp::SamlApps::new(config, creds.clone());
        let federation = Federation {
            creds,
            idps,
            oidc,
            http,
            upstream,
            skew_seconds: fed.clock_skew_seconds,
            verify_slots: tokio::sync::Semaphore::new(4),
            saml_apps,
        };
        federation.refresh_due(store, now_ms).await;
        Ok(federation)
    }

    pub fn saml_apps(&self) -> &saml_idp::SamlApps {
        &self.saml_apps
    }

    /// One of the few slots for xmlsec work (upstream Responses, downstream signed
    /// AuthnRequests); None after 5 s without one (the caller answers "busy").
    pub async fn xmlsec_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            self.verify_slots.acquire(),
        )
        .await
        .ok()
        .and_then(Result::ok)
    }

    pub fn idps(&self) -> &[Arc<SamlIdp>] {
        &self.idps
    }

    pub fn idp(&self, id: &str) -> Result<&Arc<SamlIdp>, FederationError> {
        self.idps
            .iter()
            .find(|i| i.config.id == id)
            .ok_or_else(|| FederationError::UnknownIdp(id.chars().take(40).collect()))
    }

    pub fn oidc_idp(&self, id: &str) -> Result<&Arc<OidcIdp>, FederationError> {
        self.oidc
            .iter()
            .find(|i| i.config.id == id)
            .ok_or_else(|| FederationError::UnknownIdp(id.chars().take(40).collect()))
    }

    pub fn is_oidc(&self, id: &str) -> bool {
        self.oidc.iter().any(|i| i.config.id == id)
    }

    pub(crate) fn upstream_http(&self) -> &oidc_rp::UpstreamHttp {
        &self.upstream
    }

    /// Every configured IdP, SAML then OpenID Connect: (id, button label, ready).
    pub fn buttons(&self) -> Vec<(&str, &str, bool)> {
        let saml = self.idps.iter().map(|i| {
            let c = &i.config;
            (c.id.as_str(), c.display_name.as_str(), i.is_ready())
        });
        let oidc = self.oidc.iter().map(|i| {
            let c = &i.config;
            (c.id.as_str(), c.display_name.as_str(), i.is_ready())
        });
        saml.chain(oidc).collect()
    }

    /// The button label of a configured IdP of either kind.
    pub fn display_name(&self, id: &str) -> Option<&str> {
        self.buttons()
            .into_iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, name, _)| name)
    }

    /// Home-realm discovery: the id of the IdP (of either kind) that serves this
    /// address's domain.
    pub fn idp_for_email(&self, email: &str) -> Option<&str> {
        let domain = email.trim().rsplit_once('@')?.1.to_ascii_lowercase();
        let serves = |domains: &[String]| domains.iter().any(|d| d.eq_ignore_ascii_case(&domain));
        self.idps
            .iter()
            .find(|i| serves(&i.config.email_domains))
            .map(|i| i.config.id.as_str())
            .or_else(|| {
                self.oidc
                    .iter()
                    .find(|i| serves(&i.config.email_domains))
                    .map(|i| i.config.id.as_str())
            })
    }

    fn creds(&self) -> Result<&SpCredentials, FederationError> {
        self.creds.as_ref().ok_or_else(|| {
            FederationError::Credentials("no identity provider is configured".into())
        })
    }

    /// Re-reads the SAML metadata and OpenID Connect discovery documents whose refresh
    /// time has come (the background loop calls this every minute).
    pub async fn refresh_due(&self, store: &Store, now_ms: i64) {
        for idp in &self.oidc {
            idp.refresh_due(&self.upstream, now_ms).await;
        }
        self.refresh_saml(store, now_ms).await;
        self.saml_apps.refresh_due(store, &self.http, now_ms).await;
    }

    /// A failed read keeps the copy in use; with none in memory, the last good copy
    /// from the store is used.
    async fn refresh_saml(&self, store: &Store, now_ms: i64) {
        let Some(creds) = &self.creds else { return };
        for idp in &self.idps {
            if idp.next_refresh_ms.load(Ordering::Relaxed) > now_ms {
                continue;
            }
            let period = idp.config.metadata_refresh_minutes as i64 * 60_000;
            idp.next_refresh_ms
                .store(now_ms + period, Ordering::Relaxed);
            let ours = metadata::SpEndpoints {
                entity_id: &idp.entity_id,
                acs_url: &idp.acs_url,
                skew_seconds: self.skew_seconds,
            };
            let fresh = match metadata::fetch(&idp.config, &self.http).await {
                Ok(xml) => {
                    metadata::build(&xml, &idp.config, &ours, creds, now_ms).map(|l| (l, xml))
                }
                Err(e) => Err(e),
            };
            match fresh {
                Ok((loaded, xml)) => {
                    tracing::info!(idp = %idp.config.id, entity = %loaded.idp_entity_id, "SAML IdP metadata loaded");
                    crate::ops::metrics::saml_metadata_loaded(&idp.config.id, now_ms);
                    idp.set(loaded);
                    if let Err(e) =
                        metadata::save_last_good(store, &idp.config.id, &xml, now_ms).await
                    {
                        tracing::warn!(idp = %idp.config.id, error = %e, "keeping the IdP metadata in the store failed");
                    }
                }
                Err(e) => {
                    tracing::error!(idp = %idp.config.id, error = %e, "SAML IdP metadata could not be loaded");
                    if idp.is_ready() {
                        continue;
                    }
                    // Nothing in use: try again in a minute, not a whole period.
                    idp.next_refresh_ms
                        .store(now_ms + 60_000, Ordering::Relaxed);
                    if let Ok(Some((xml, _fetched_at))) =
                        metadata::last_good(store, &idp.config.id).await
                    {
                        match metadata::build(&xml, &idp.config, &ours, creds, now_ms) {
                            Ok(l) => {
                                tracing::warn!(idp = %idp.config.id, "using the last good metadata from the store");
                                idp.set(l);
                            }
                            Err(e) => {
                                tracing::error!(idp = %idp.config.id, error = %e, "the stored metadata is not usable either")
                            }
                        }
                    }
                }
            }
        }
    }

    /// Our SP metadata for one IdP (valid a week; we publish it fresh on every GET).
    pub fn sp_metadata(&self, idp_id: &str, now_ms: i64) -> Result<String, FederationError> {
        let idp = self.idp(idp_id)?;
        let m = saml_sp::SpMetadata {
            entity_id: &idp.entity_id,
            acs_url: &idp.acs_url,
            sign_requests: idp.config.sign_authn_requests,
            name_id_format: idp.config.name_id_format.as_deref(),
            valid_until_ms: now_ms + 7 * 86_400_000,
        };
        saml_sp::sp_metadata(&m, self.creds()?)
    }
}

/// Where to send the browser, and the value for its binding cookie.
pub struct Started {
    pub redirect_url: String,
    pub browser_secret: String,
}

/// Step 1: an AuthnRequest to the IdP, remembered until `request_ttl_seconds`.
pub async fn begin_signin(
    app: &AppState,
    idp_id: &str,
    auth_request: Option<&str>,
    force_authn: bool,
) -> Result<Started, FederationError> {
    let fed = app.federation();
    let idp = fed.idp(idp_id)?;
    let loaded = idp.loaded().ok_or(FederationError::MetadataUnavailable)?;
    let creds = fed.creds()?;
    let now = app.clock().now_ms();
    let id = format!("_{}", hex::encode(random_bytes::<16>()));
    let browser_secret = crate::crypto::random_token(32);
    pending::save_request(
        app.store(),
        &pending::NewRequest {
            id: &id,
            idp_id,
            browser_digest: &sha256_hex(&browser_secret),
            auth_request,
            force_authn,
            now_ms: now,
            expires_at_ms: now + app.config().federation.request_ttl_seconds * 1000,
        },
    )
    .await?;
    let req = saml_sp::AuthnRequest {
        id: &id,
        entity_id: &idp.entity_id,
        acs_url: &idp.acs_url,
        sso_url: &loaded.sso_url,
        now_ms: now,
        force_authn,
        name_id_format: idp.config.name_id_format.as_deref(),
    };
    let signer = idp.config.sign_authn_requests.then_some(creds);
    Ok(Started {
        redirect_url: req.redirect_url(None, signer)?,
        browser_secret,
    })
}

/// Step 2: the IdP's Response at our ACS. Returns the handle the browser brings to
/// step 3.
pub async fn accept_response(
    app: &AppState,
    idp_id: &str,
    saml_response: &str,
    origin: &Origin,
) -> Result<String, FederationError> {
    let fed = app.federation();
    let idp = fed.idp(idp_id)?;
    let loaded = idp.loaded().ok_or(FederationError::MetadataUnavailable)?;
    let now = app.clock().now_ms();
    let decoded = saml_response::decode(saml_response, idp.config.allow_sha1)?;
    let pending = match &decoded.in_response_to {
        Some(id) => match pending::find_request(app.store(), idp_id, id, now).await? {
            Some(p) => Some(p),
            // Each its own code (audit, metrics, page): an IdP that is slow, a
            // Response posted twice, and one answering a request we never sent call
            // for different fixes. The InResponseTo is unverified here; it only
            // chooses which refusal to give.
            None => {
                return Err(
                    match pending::why_not_live(app.store(), idp_id, id, now).await? {
                        pending::NotLive::TimedOut => FederationError::RequestTimedOut,
                        pending::NotLive::Answered => FederationError::rejected(
                            "replayed",
                            "the request this Response answers was already answered",
                        ),
                        pending::NotLive::Unknown => FederationError::rejected(
                            "in_response_to",
                            "the Response answers a request this hub did not send to this IdP",
                        ),
                    },
                )
            }
        },
        None if idp.config.allow_idp_initiated => None,
        None => {
            return Err(FederationError::rejected(
                "unsolicited",
                "a Response the hub did not ask for (IdP-initiated sign-in is off)",
            ))
        }
    };
    // xmlsec is CPU work with no await points: keep it off the async workers, four
    // at a time at most.
    let _slot = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        fed.verify_slots.acquire(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .ok_or_else(|| FederationError::rejected("busy", "too many Responses being checked"))?;
    let sp = loaded.sp.clone();
    let sp_key = fed.creds()?.key.clone();
    let (allow_rsa1_5, allow_sha1) = (idp.config.allow_rsa1_5, idp.config.allow_sha1);
    let request_id = pending.as_ref().map(|p| p.id.clone());
    let authn_after_ms = pending.as_ref().and_then(|p| p.forced_at);
    let skew_ms = app.config().federation.clock_skew_seconds * 1000;
    let verified = tokio::task::spawn_blocking(move || {
        let expect = saml_response::Expect {
            sp: &sp,
            request_id: request_id.as_deref(),
            authn_after_ms,
            now_ms: now,
            skew_ms,
            sp_key: &sp_key,
            allow_rsa1_5,
            allow_sha1,
        };
        saml_response::verify(&decoded, &expect)
    })
    .await
    .map_err(|_| FederationError::rejected("malformed", "verification did not finish"))??;
    let mut tx = app.store().begin().await?;
    pending::consume(
        &mut tx,
        idp_id,
        pending.as_ref().map(|p| p.id.as_str()),
        &verified.assertion_id,
        verified.remember_until_ms,
        now,
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    let person = linking::resolve_person(
        app,
        &linking::LinkPolicy::saml(&idp.config),
        &verified,
        origin,
    )
    .await?;
    let mfa = verified
        .authn_contexts
        .iter()
        .any(|c| idp.config.mfa_authn_contexts.contains(c));
    let mut amr = vec!["fed".to_string()];
    if mfa {
        amr.push("mfa".into());
    }
    let handle = crate::crypto::random_token(32);
    pending::save_handoff(
        app.store(),
        &pending::Handoff {
            handle_digest: &sha256_hex(&handle),
            idp_id,
            person_id: &person.id,
            browser_digest: pending.as_ref().map(|p| p.browser_digest.as_str()),
            amr: &amr,
            acr: if mfa { ACR_MFA } else { ACR_FEDERATED },
            auth_request: pending.as_ref().and_then(|p| p.auth_request.as_deref()),
            expires_at_ms: now + HANDOFF_TTL_MS,
        },
    )
    .await?;
    Ok(handle)
}

/// A finished upstream sign-in, ready to become a session.
pub struct Completed {
    pub idp_id: String,
    pub person_id: String,
    pub amr: Vec<String>,
    pub acr: String,
    pub auth_request: Option<String>,
}

/// Step 3: the browser is back with the handle, and must be the browser that began.
pub async fn complete_signin(
    app: &AppState,
    handle: &str,
    browser_secret: Option<&str>,
) -> Result<Completed, FederationError> {
    if handle.is_empty() || handle.len() > 100 {
        return Err(FederationError::Expired);
    }
    let now = app.clock().now_ms();
    let taken = pending::take_handoff(app.store(), &sha256_hex(handle), now)
        .await?
        .ok_or(FederationError::Expired)?;
    if let Some(expected) = &taken.browser_digest {
        let presented = browser_secret.map(sha256_hex).unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), expected.as_bytes()) {
            return Err(FederationError::OtherBrowser { idp: taken.idp_id });
        }
    }
    Ok(Completed {
        idp_id: taken.idp_id,
        person_id: taken.person_id,
        amr: taken.amr,
        acr: taken.acr,
        auth_request: taken.auth_request,
    })
}

/// Audits a refused upstream sign-in (`idp` is a configured id or `-`). Best effort:
/// a refusal that cannot be audited is still refused, and logged.
pub(crate) async fn record_refusal(app: &AppState, idp: &str, reason: &str, origin: &Origin) {
    let entry = crate::audit::Entry {
        action: "federation.signin",
        outcome: crate::audit::Outcome::Denied,
        target_kind: "idp",
        target_id: idp,
        details: serde_json::json!({ "reason": reason }),
    };
    let now = app.clock().now_ms();
    let recorded = async {
        let mut tx = app.store().begin().await?;
        crate::audit::record(&mut tx, app.audit_key(), now, origin, entry).await?;
        tx.commit().await?;
        Ok::<(), crate::audit::AuditError>(())
    };
    if let Err(e) = recorded.await {
        tracing::error!(error = %e, "auditing a refused upstream sign-in failed");
    }
}
