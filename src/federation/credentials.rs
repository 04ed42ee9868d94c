//! The hub's SAML key pair: it signs our AuthnRequests (and, as an IdP, our
//! Responses) and IdPs encrypt assertions to its certificate. From PEM files when
//! configured; otherwise generated once and kept in the store, sealed under the master
//! key, so every replica and every restart publishes the same certificate.

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509NameBuilder, X509};

use super::FederationError;
use crate::config::FederationConfig;
use crate::crypto::MasterKey;
use crate::store::{self, Store};

const ROW_ID: &str = "default";
const SEAL_LABEL: &str = "saml-sp-key";

#[derive(Clone)]
pub struct SpCredentials {
    pub key: PKey<Private>,
    pub cert: X509,
    /// DER, for samael's metadata and signing.
    pub cert_der: Vec<u8>,
}

impl std::fmt::Debug for SpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SpCredentials { key: <redacted>, .. }")
    }
}

fn cred_err(what: &str) -> impl Fn(openssl::error::ErrorStack) -> FederationError + '_ {
    move |e| FederationError::Credentials(format!("{what}: {e}"))
}

impl SpCredentials {
    fn new(key: PKey<Private>, cert: X509) -> Result<SpCredentials, FederationError> {
        let cert_der = cert.to_der().map_err(cred_err("certificate"))?;
        Ok(SpCredentials {
            key,
            cert,
            cert_der,
        })
    }

    /// The configured PEM files (`federation.sp_key_file`, `sp_cert_file`); also what
    /// `check-config` reads to check them.
    pub fn from_files(
        key_file: &std::path::Path,
        cert_file: &std::path::Path,
    ) -> Result<SpCredentials, FederationError> {
        let read = |p: &std::path::Path| {
            std::fs::read(p).map_err(|e| {
                FederationError::Credentials(format!("cannot read {}: {e}", p.display()))
            })
        };
        let key = PKey::private_key_from_pem(&read(key_file)?).map_err(cred_err("sp_key_file"))?;
        let cert = X509::from_pem(&read(cert_file)?).map_err(cred_err("sp_cert_file"))?;
        SpCredentials::new(key, cert)
    }

    /// Reads the configured files, or the stored pair (creating it the first time).
    pub async fn load(
        cfg: &FederationConfig,
        store: &Store,
        master: &MasterKey,
        issuer: &str,
        now_ms: i64,
    ) -> Result<SpCredentials, FederationError> {
        if let (Some(k), Some(c)) = (&cfg.sp_key_file, &cfg.sp_cert_file) {
            return Self::from_files(k, c);
        }
        if let Some(found) = Self::stored(store, master).await? {
            return Ok(found);
        }
        let (key, cert) = generate(issuer, now_ms)?;
        let key_pem = key.private_key_to_pem_pkcs8().map_err(cred_err("key"))?;
        let sealed = crate::crypto::seal(master, SEAL_LABEL, &key_pem)
            .map_err(|e| FederationError::Credentials(e.to_string()))?;
        let cert_pem = String::from_utf8(cert.to_pem().map_err(cred_err("certificate"))?)
            .map_err(|_| FederationError::Credentials("certificate PEM".into()))?;
        // Two replicas starting at once: the first insert wins, both use it.
        sqlx::query(
            "INSERT INTO saml_sp_credentials (id, key_sealed, cert_pem, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(ROW_ID)
        .bind(&sealed)
        .bind(&cert_pem)
        .bind(now_ms)
        .execute(store.writer())
        .await?;
        Self::stored(store, master)
            .await?
            .ok_or_else(|| FederationError::Credentials("the stored key pair vanished".into()))
    }

    async fn stored(
        store: &Store,
        master: &MasterKey,
    ) -> Result<Option<SpCredentials>, FederationError> {
        let row = sqlx::query("SELECT key_sealed, cert_pem FROM saml_sp_credentials WHERE id = $1")
            .bind(ROW_ID)
            .fetch_optional(store.writer())
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sealed: String = store::get(&row, "key_sealed")?;
        let cert_pem: String = store::get(&row, "cert_pem")?;
        let key_pem = crate::crypto::open(master, SEAL_LABEL, &sealed)
            .map_err(|e| FederationError::Credentials(e.to_string()))?;
        let key = PKey::private_key_from_pem(&key_pem).map_err(cred_err("stored key"))?;
        let cert = X509::from_pem(cert_pem.as_bytes()).map_err(cred_err("stored certificate"))?;
        SpCredentials::new(key, cert).map(Some)
    }
}

/// RSA-3072 (NIST SP 800-57: good beyond 2030) and a self-signed certificate: SAML
/// trusts keys through metadata, not through a CA, so ten years is harmless.
fn generate(issuer: &str, now_ms: i64) -> Result<(PKey<Private>, X509), FederationError> {
    let rsa = Rsa::generate(3072).map_err(cred_err("generate"))?;
    let key = PKey::from_rsa(rsa).map_err(cred_err("generate"))?;
    let host = url::Url::parse(issuer)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "hms-ach".into());
    let mut name = X509NameBuilder::new().map_err(cred_err("name"))?;
    name.append_entry_by_text("CN", &format!("{host} SAML"))
        .map_err(cred_err("name"))?;
    let name = name.build();
    let mut b = X509::builder().map_err(cred_err("certificate"))?;
    b.set_version(2).map_err(cred_err("certificate"))?;
    let mut serial = BigNum::new().map_err(cred_err("serial"))?;
    serial
        .rand(128, MsbOption::MAYBE_ZERO, false)
        .map_err(cred_err("serial"))?;
    let serial = serial.to_asn1_integer().map_err(cred_err("serial"))?;
    b.set_serial_number(&serial).map_err(cred_err("serial"))?;
    b.set_subject_name(&name).map_err(cred_err("certificate"))?;
    b.set_issuer_name(&name).map_err(cred_err("certificate"))?;
    b.set_pubkey(&key).map_err(cred_err("certificate"))?;
    // From the Clock, not OpenSSL's own reading of the wall clock (clippy.toml).
    let now = crate::clock::Timestamp::from_millis(now_ms);
    let start = Asn1Time::from_unix(now.as_secs()).map_err(cred_err("validity"))?;
    let end = Asn1Time::from_unix(now.plus_secs(3650 * 86_400).as_secs())
        .map_err(cred_err("validity"))?;
    b.set_not_before(&start).map_err(cred_err("validity"))?;
    b.set_not_after(&end).map_err(cred_err("validity"))?;
    b.sign(&key, MessageDigest::sha256())
        .map_err(cred_err("sign"))?;
    Ok((key, b.build()))
}

impl SpCredentials {
    /// A fresh pair, stored nowhere: for tests, the fuzz targets and benches.
    pub fn ephemeral(issuer: &str) -> Result<SpCredentials, FederationError> {
        let now_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let (key, cert) = generate(issuer, now_ms)?;
        SpCredentials::new(key, cert)
    }
}
