//! An upstream IdP's metadata (SAML metadata §2.4.3): where to send people
//! (SingleSignOnService, HTTP-Redirect binding) and which certificates sign its
//! Responses. Read at start and every `metadata_refresh_minutes`; the last good copy is
//! kept in the store, so an IdP whose metadata URL is down still works after a restart.

use chrono::TimeDelta;
use samael::crypto::CertificateDer;
use samael::metadata::{EntityDescriptor, HTTP_REDIRECT_BINDING};
use samael::service_provider::{ServiceProvider, ServiceProviderBuilder};
use std::time::Duration;

use super::credentials::SpCredentials;
use super::saml_response::allowed_algorithms;
use super::FederationError;
use crate::config::SamlIdpConfig;
use crate::store::{self, Store};

/// Per-entity metadata is a few KiB; aggregates (whole federations) are not supported.
const MAX_METADATA_BYTES: usize = 1024 * 1024;

/// Parsed, checked metadata and the samael service provider built on it.
#[derive(Clone)]
pub struct Loaded {
    pub sp: ServiceProvider,
    pub idp_entity_id: String,
    pub sso_url: String,
}

/// Our side of one IdP: the entity id and ACS we publish to it.
pub struct SpEndpoints<'a> {
    pub entity_id: &'a str,
    pub acs_url: &'a str,
    pub skew_seconds: i64,
}

/// Reads the metadata from its file or URL.
pub async fn fetch(cfg: &SamlIdpConfig, http: &reqwest::Client) -> Result<String, FederationError> {
    fetch_from(
        cfg.metadata_file.as_deref(),
        cfg.metadata_url.as_deref(),
        http,
    )
    .await
}

/// Reads metadata (an IdP's or a downstream SP's) from a file or a URL.
pub async fn fetch_from(
    file: Option<&std::path::Path>,
    url: Option<&str>,
    http: &reqwest::Client,
) -> Result<String, FederationError> {
    if let Some(path) = file {
        let text = tokio::fs::read_to_string(path).await.map_err(|e| {
            FederationError::BadMetadata(format!("cannot read {}: {e}", path.display()))
        })?;
        return Ok(text);
    }
    let url = url.ok_or_else(|| FederationError::BadMetadata("no metadata source".into()))?;
    let resp = http
        .get(url)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|e| FederationError::BadMetadata(format!("GET {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(FederationError::BadMetadata(format!(
            "GET {url}: HTTP {}",
            resp.status()
        )));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| FederationError::BadMetadata(format!("GET {url}: {e}")))?;
    if body.len() > MAX_METADATA_BYTES {
        return Err(FederationError::BadMetadata(format!(
            "{url} is over 1 MiB; point metadata_url at this entity's own metadata"
        )));
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| FederationError::BadMetadata(format!("{url} is not UTF-8")))
}

/// One entity's metadata (an IdP's, or a downstream app's): no DTD, an entityID,
/// not past its validUntil. Returns the descriptor and its entity id.
pub fn parse_entity(xml: &str, now_ms: i64) -> Result<(EntityDescriptor, String), String> {
    let upper = xml.to_ascii_uppercase();
    if upper.contains("<!DOCTYPE") || upper.contains("<!ENTITY") {
        return Err("metadata must not carry a DTD".into());
    }
    let entity: EntityDescriptor = xml
        .parse()
        .map_err(|e| format!("not an md:EntityDescriptor: {e}"))?;
    let entity_id = entity
        .entity_id
        .clone()
        .filter(|e| !e.trim().is_empty())
        .ok_or_else(|| "entityID is missing".to_string())?;
    if let Some(until) = entity.valid_until {
        if until.timestamp_millis() <= now_ms {
            return Err(format!(
                "it expired (validUntil {until}); the entity must publish fresh metadata"
            ));
        }
    }
    Ok((entity, entity_id))
}

/// Parses and checks metadata and builds the service provider that verifies this
/// IdP's Responses.
pub fn build(
    xml: &str,
    cfg: &SamlIdpConfig,
    ours: &SpEndpoints<'_>,
    creds: &SpCredentials,
    now_ms: i64,
) -> Result<Loaded, FederationError> {
    build_with(
        xml,
        cfg,
        ours,
        Some(CertificateDer::from(creds.cert_der.clone())),
        now_ms,
    )
}

/// Every check `build` makes, without the hub's key pair (`check-config` has none
/// to hand, and must not create one): one code path for what `serve` refuses.
pub fn check(
    xml: &str,
    cfg: &SamlIdpConfig,
    ours: &SpEndpoints<'_>,
    now_ms: i64,
) -> Result<(), FederationError> {
    build_with(xml, cfg, ours, None, now_ms).map(|_| ())
}

fn build_with(
    xml: &str,
    cfg: &SamlIdpConfig,
    ours: &SpEndpoints<'_>,
    our_cert: Option<CertificateDer>,
    now_ms: i64,
) -> Result<Loaded, FederationError> {
    let bad = |m: String| FederationError::BadMetadata(m);
    let (entity, idp_entity_id) = parse_entity(xml, now_ms).map_err(bad)?;
    if entity
        .idp_sso_descriptors
        .as_ref()
        .is_none_or(|d| d.is_empty())
    {
        return Err(bad(
            "there is no IDPSSODescriptor: this is not an identity provider's metadata".into(),
        ));
    }
    let sp = ServiceProviderBuilder::default()
        .entity_id(ours.entity_id.to_string())
        .metadata_url(ours.entity_id.to_string())
        .acs_url(ours.acs_url.to_string())
        .slo_url(None::<String>)
        // No key: samael must never decrypt on its own (AES-128 only, and without
        // the signature rules and single refusal of `saml_encrypted`).
        .certificate(our_cert)
        .idp_metadata(entity)
        .authn_name_id_format(cfg.name_id_format.clone())
        .allow_idp_initiated(false)
        .max_clock_skew(TimeDelta::seconds(ours.skew_seconds))
        .max_issue_delay(TimeDelta::seconds(90 + ours.skew_seconds))
        .allowed_signature_algorithms(allowed_algorithms(cfg.allow_sha1))
        .build()
        .map_err(|e| bad(format!("{e}")))?;
    // Without a signing certificate samael would not check signatures at all.
    match sp.idp_signing_certs() {
        Ok(Some(c)) if !c.is_empty() => {}
        Ok(_) => {
            return Err(bad(
                "it has no signing certificate (KeyDescriptor use=\"signing\")".into(),
            ))
        }
        Err(e) => return Err(bad(format!("a certificate does not parse: {e}"))),
    }
    let sso_url = sp
        .sso_binding_location(HTTP_REDIRECT_BINDING)
        .ok_or_else(|| {
            bad("there is no SingleSignOnService with the HTTP-Redirect binding".into())
        })?;
    Ok(Loaded {
        sp,
        idp_entity_id,
        sso_url,
    })
}

pub async fn save_last_good(
    store: &Store,
    idp_id: &str,
    xml: &str,
    now_ms: i64,
) -> Result<(), FederationError> {
    sqlx::query(
        "INSERT INTO saml_idp_metadata (idp_id, xml, fetched_at) VALUES ($1, $2, $3)
         ON CONFLICT (idp_id) DO UPDATE SET xml = excluded.xml, fetched_at = excluded.fetched_at",
    )
    .bind(idp_id)
    .bind(xml)
    .bind(now_ms)
    .execute(store.writer())
    .await?;
    Ok(())
}

pub async fn last_good(
    store: &Store,
    idp_id: &str,
) -> Result<Option<(String, i64)>, FederationError> {
    let row = sqlx::query("SELECT xml, fetched_at FROM saml_idp_metadata WHERE idp_id = $1")
        .bind(idp_id)
        .fetch_optional(store.reader())
        .await?;
    match row {
        Some(r) => Ok(Some((
            store::get(&r, "xml")?,
            store::get(&r, "fetched_at")?,
        ))),
        None => Ok(None),
    }
}
