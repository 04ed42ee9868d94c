//! What `hms-ach check-config` verifies beyond the configuration tree: every SAML
//! metadata source is read and checked by the functions `serve` uses when it loads
//! it (`metadata::fetch` + `metadata::check` for district IdPs,
//! `saml_idp::load_metadata` for SAML apps). One code path: a missing file, an app
//! whose metadata names another entity or has a plain-http ACS off loopback, are
//! reported before the hub starts, not only as errors in its log afterwards. The
//! hub's own key pair files, when configured, are read as `serve` reads them too.

use crate::config::Config;

/// One entry that `serve` would leave unavailable, and why (with what to change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataProblem {
    /// Where in the configuration, e.g. `saml_apps.service_providers id = "library"`.
    pub at: String,
    pub message: String,
}

impl std::fmt::Display for MetadataProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

/// Reads and checks each configured metadata source. Nothing is written: no key
/// pair is created and the store is not touched.
pub async fn check_metadata(config: &Config, now_ms: i64) -> Vec<MetadataProblem> {
    let mut problems = Vec::new();
    let http = match super::metadata_http() {
        Ok(h) => h,
        Err(e) => {
            problems.push(MetadataProblem {
                at: "federation".into(),
                message: e.to_string(),
            });
            return problems;
        }
    };
    let fed = &config.federation;
    if let (Some(key), Some(cert)) = (&fed.sp_key_file, &fed.sp_cert_file) {
        if let Err(e) = super::SpCredentials::from_files(key, cert) {
            problems.push(MetadataProblem {
                at: "federation.sp_key_file / sp_cert_file".into(),
                message: e.to_string(),
            });
        }
    }
    let issuer = config.issuer();
    for idp in &config.federation.saml_idps {
        let (entity_id, acs_url) = super::sp_endpoints(&issuer, &idp.id);
        let ours = super::metadata::SpEndpoints {
            entity_id: &entity_id,
            acs_url: &acs_url,
            skew_seconds: config.federation.clock_skew_seconds,
        };
        let checked = match super::metadata::fetch(idp, &http).await {
            Ok(xml) => super::metadata::check(&xml, idp, &ours, now_ms),
            Err(e) => Err(e),
        };
        if let Err(e) = checked {
            problems.push(MetadataProblem {
                at: format!("federation.saml_idps id = {:?}", idp.id),
                message: e.to_string(),
            });
        }
    }
    for sp in &config.saml_apps.service_providers {
        if let Err(e) = super::saml_idp::load_metadata(sp, &http, now_ms).await {
            problems.push(MetadataProblem {
                at: format!("saml_apps.service_providers id = {:?}", sp.id),
                message: e.to_string(),
            });
        }
    }
    problems
}
