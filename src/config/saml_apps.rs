//! `[saml_apps]`: downstream apps that speak only SAML 2.0. The hub is their identity
//! provider (`federation::saml_idp`); each is registered from its SP metadata.
//!
//! ```toml
//! [[saml_apps.service_providers]]
//! id = "library"
//! entity_id = "https://library.example/saml/metadata"
//! display_name = "Library catalogue"
//! metadata_file = "sp/library.xml"
//! name_id_format = "persistent"          # or "email"
//! idp_initiated = true                   # a tile in the portal
//! attributes = { mail = "email", givenName = "given_name", eduPersonAffiliation = "affiliation", Role = "roles" }
//! ```

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlAppsConfig {
    /// How long an assertion may be presented (SubjectConfirmationData and Conditions
    /// NotOnOrAfter). A Response goes straight from the browser to the app, so minutes.
    pub assertion_lifetime_seconds: i64,
    /// How old an AuthnRequest's IssueInstant may be (on top of `federation.clock_skew_seconds`).
    pub request_max_age_seconds: i64,
    pub service_providers: Vec<SamlSpConfig>,
}

impl Default for SamlAppsConfig {
    fn default() -> Self {
        Self {
            assertion_lifetime_seconds: 300,
            request_max_age_seconds: 600,
            service_providers: Vec::new(),
        }
    }
}

/// One downstream SAML service provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlSpConfig {
    /// Short name used in URLs (`/saml/idp/init/{id}`) and logs.
    pub id: String,
    /// What the portal tile and the sign-in page call the app.
    pub display_name: String,
    /// The app's SAML entityID. Pinned: metadata naming another entity is refused
    /// (an app's metadata URL must not be able to take over another app's identity,
    /// its persistent NameIDs or its settings).
    pub entity_id: String,
    /// The SP's metadata, from a file or a URL (exactly one).
    #[serde(default)]
    pub metadata_file: Option<PathBuf>,
    #[serde(default)]
    pub metadata_url: Option<String>,
    #[serde(default = "default_refresh_minutes")]
    pub metadata_refresh_minutes: u64,
    /// `persistent` (an opaque identifier per app, SAML core §8.3.7: the app cannot
    /// correlate people with other apps) or `email` (§8.3.2, when the app keys
    /// accounts by address). A request may ask for either, if it is the one allowed.
    #[serde(default = "default_name_id")]
    pub name_id_format: String,
    /// SAML attribute name → what it carries: `email`, `username`, `given_name`,
    /// `family_name`, `display_name`, `sourced_id`, `affiliation` (eduPersonAffiliation
    /// values), `kinds`, `roles` (`role` or `role@org`), `orgs` or `identifier:TYPE`.
    /// Nothing is released unless mapped (an address next to a persistent NameID would
    /// let apps correlate people again).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Every sign-in to this app needs a second factor (as the OIDC client setting).
    #[serde(default)]
    pub mfa_required: bool,
    /// A tile in the portal starts an IdP-initiated sign-in (SAML profiles §4.1.5).
    #[serde(default)]
    pub idp_initiated: bool,
    /// The RelayState sent with IdP-initiated Responses (where the app lands).
    #[serde(default)]
    pub default_relay_state: Option<String>,
    /// Refuse unsigned AuthnRequests. Default: what the metadata says
    /// (`AuthnRequestsSigned`).
    #[serde(default)]
    pub require_signed_requests: Option<bool>,
}

fn default_refresh_minutes() -> u64 {
    60
}

fn default_name_id() -> String {
    "persistent".into()
}

/// The values an attribute may carry (see `SamlSpConfig::attributes`).
pub const ATTRIBUTE_SOURCES: &[&str] = &[
    "email",
    "username",
    "given_name",
    "family_name",
    "display_name",
    "sourced_id",
    "affiliation",
    "kinds",
    "roles",
    "orgs",
];

impl SamlAppsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !(30..=3600).contains(&self.assertion_lifetime_seconds) {
            return bad("saml_apps.assertion_lifetime_seconds must be between 30 and 3600".into());
        }
        if !(60..=86_400).contains(&self.request_max_age_seconds) {
            return bad("saml_apps.request_max_age_seconds must be between 60 and 86400".into());
        }
        let mut seen = std::collections::HashSet::new();
        let mut entities = std::collections::HashSet::new();
        for sp in &self.service_providers {
            let at = format!("saml_apps.service_providers id = {:?}", sp.id);
            let id_ok = !sp.id.is_empty()
                && sp.id.len() <= 40
                && sp
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return bad(format!(
                    "{at}: id must be 1-40 characters of a-z, 0-9 and -, e.g. library"
                ));
            }
            if !seen.insert(sp.id.as_str()) {
                return bad(format!("{at}: two service providers have this id"));
            }
            if sp.entity_id.trim().is_empty() || sp.entity_id.len() > 1024 {
                return bad(format!(
                    "{at}: entity_id must be the app's SAML entityID (from its metadata)"
                ));
            }
            if !entities.insert(sp.entity_id.as_str()) {
                return bad(format!(
                    "{at}: two service providers have the entity_id {:?}",
                    sp.entity_id
                ));
            }
            if sp.display_name.trim().is_empty() {
                return bad(format!("{at}: display_name is empty; people see it"));
            }
            match (&sp.metadata_file, &sp.metadata_url) {
                (Some(_), None) => {}
                (None, Some(url)) => super::federation::check_metadata_url(url)
                    .map_err(|m| ConfigError::Invalid(format!("{at}: {m}")))?,
                _ => {
                    return bad(format!(
                        "{at}: set exactly one of metadata_file and metadata_url"
                    ))
                }
            }
            if sp.metadata_refresh_minutes == 0 {
                return bad(format!("{at}: metadata_refresh_minutes must be at least 1"));
            }
            if !matches!(sp.name_id_format.as_str(), "persistent" | "email") {
                return bad(format!(
                    "{at}: name_id_format = {:?}: use persistent or email",
                    sp.name_id_format
                ));
            }
            for (name, source) in &sp.attributes {
                if name.trim().is_empty() || name.len() > 256 {
                    return bad(format!("{at}: an attribute name is empty or too long"));
                }
                let known = ATTRIBUTE_SOURCES.contains(&source.as_str())
                    || source
                        .strip_prefix("identifier:")
                        .is_some_and(|t| !t.is_empty());
                if !known {
                    return bad(format!(
                        "{at}: attribute {name:?} = {source:?}: use one of {} or identifier:TYPE",
                        ATTRIBUTE_SOURCES.join(", ")
                    ));
                }
            }
            if let Some(rs) = &sp.default_relay_state {
                if rs.len() > 80 {
                    return bad(format!(
                        "{at}: default_relay_state is over 80 bytes (SAML bindings §3.4.3)"
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sps(toml_text: &str) -> Result<(), ConfigError> {
        let cfg: SamlAppsConfig =
            toml::from_str(toml_text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()
    }

    #[test]
    fn sources_formats_and_ids_are_checked() {
        sps("[[service_providers]]\nid='lib'\nentity_id='https://lib.example/sp'\ndisplay_name='Library'\nmetadata_file='a.xml'\n")
            .unwrap();
        let e = sps("[[service_providers]]\nid='lib'\nentity_id='https://lib.example/sp'\ndisplay_name='L'\nmetadata_file='a.xml'\nname_id_format='transient'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("persistent or email"), "{e}");
        let e = sps("[[service_providers]]\nid='lib'\nentity_id='https://lib.example/sp'\ndisplay_name='L'\nmetadata_file='a.xml'\nattributes={mail='phone'}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("identifier:TYPE"), "{e}");
        let e = sps("[[service_providers]]\nid='a'\nentity_id='https://x/sp'\ndisplay_name='A'\nmetadata_file='a.xml'\n[[service_providers]]\nid='b'\nentity_id='https://x/sp'\ndisplay_name='B'\nmetadata_file='b.xml'\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("two service providers have the entity_id"),
            "{e}"
        );
        let e = sps("[[service_providers]]\nid='lib'\nentity_id='https://lib.example/sp'\ndisplay_name='L'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of"), "{e}");
        let e = sps("[[service_providers]]\nid='lib'\nentity_id='https://lib.example/sp'\ndisplay_name='L'\nmetadata_url='http://sp.example/md'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("https"), "{e}");
    }
}
