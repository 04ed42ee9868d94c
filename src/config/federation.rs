//! `[federation]`: the district's identity providers the hub trusts: SAML 2.0 IdPs here,
//! OpenID Providers in `federation_oidc.rs`.
//!
//! ```toml
//! [[federation.saml_idps]]
//! id = "riverside-shib"
//! display_name = "Riverside University"
//! metadata_url = "https://idp.riverside.edu/idp/shibboleth"
//! email_domains = ["riverside.edu"]
//! link = { attribute = "eduPersonPrincipalName", person_field = "username" }
//! ```

use serde::Deserialize;
use std::path::PathBuf;

use super::{ConfigError, OidcIdpConfig};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FederationConfig {
    /// PEM files of the key and certificate the hub signs its AuthnRequests with and
    /// that IdPs encrypt assertions to. Without them the hub generates a pair once and
    /// keeps it in the database, encrypted under the master key.
    pub sp_key_file: Option<PathBuf>,
    pub sp_cert_file: Option<PathBuf>,
    /// Allowed difference between the IdP's clock and ours when checking NotBefore and
    /// NotOnOrAfter (SAML core §2.5.1.2 leaves the allowance to the relying party).
    pub clock_skew_seconds: i64,
    /// How long a person has to finish signing in at the IdP.
    pub request_ttl_seconds: i64,
    /// Requests to the IdP buttons, home-realm discovery and the SAML ACS per source
    /// address per minute, per replica (one budget, apart from password attempts).
    /// Generous: a whole school may sign in from one address.
    pub requests_per_ip_per_minute: u32,
    pub saml_idps: Vec<SamlIdpConfig>,
    pub oidc_idps: Vec<OidcIdpConfig>,
}

impl Default for FederationConfig {
    fn default() -> Self {
        Self {
            sp_key_file: None,
            sp_cert_file: None,
            clock_skew_seconds: 120,
            request_ttl_seconds: 600,
            requests_per_ip_per_minute: 300,
            saml_idps: Vec::new(),
            oidc_idps: Vec::new(),
        }
    }
}

/// One upstream SAML 2.0 identity provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamlIdpConfig {
    /// Short name used in URLs: `/saml/sp/{id}/metadata`, `/saml/sp/{id}/acs`.
    pub id: String,
    /// What the sign-in page's button says ("Sign in with …").
    pub display_name: String,
    /// The IdP's metadata, from a file or a URL (exactly one).
    #[serde(default)]
    pub metadata_file: Option<PathBuf>,
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// How often metadata is read again (keys roll over at the IdP).
    #[serde(default = "default_refresh_minutes")]
    pub metadata_refresh_minutes: u64,
    /// Home-realm discovery: people whose address ends in one of these sign in here.
    #[serde(default)]
    pub email_domains: Vec<String>,
    /// Which asserted value finds the person in the directory.
    #[serde(default)]
    pub link: LinkConfig,
    /// Which attributes carry a new person's details (just-in-time creation).
    #[serde(default)]
    pub attributes: AttributeMapping,
    /// Create an unmatched person, in status `pending` until an administrator
    /// activates them. Off: an unmatched person is refused with a page saying why.
    #[serde(default)]
    pub just_in_time: bool,
    /// Accept RSA-SHA1 signatures (only for an IdP that cannot do better).
    #[serde(default)]
    pub allow_sha1: bool,
    /// Accept encrypted assertions whose key is wrapped with RSA PKCS#1 v1.5
    /// (`xmlenc#rsa-1_5`, a padding-oracle risk) rather than RSA-OAEP; only for an IdP
    /// that cannot do better.
    #[serde(default)]
    pub allow_rsa1_5: bool,
    /// Accept Responses the hub did not ask for (exposes people to login CSRF).
    #[serde(default)]
    pub allow_idp_initiated: bool,
    #[serde(default = "yes")]
    pub sign_authn_requests: bool,
    /// AuthnContextClassRef values that mean the IdP used more than one factor.
    #[serde(default = "default_mfa_contexts")]
    pub mfa_authn_contexts: Vec<String>,
    /// The NameIDPolicy Format to ask for; none: the IdP chooses.
    #[serde(default)]
    pub name_id_format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LinkConfig {
    /// `NameID`, or an attribute's Name or FriendlyName (`eduPersonPrincipalName`,
    /// `mail`, `employeeNumber`, `urn:oid:…`).
    pub attribute: String,
    /// `username`, `email`, `sourced_id` or `identifier:TYPE` (a directory identifier).
    pub person_field: String,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            attribute: "eduPersonPrincipalName".into(),
            person_field: "username".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributeMapping {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    /// eduPersonAffiliation values become person kinds (faculty → teacher, …).
    pub affiliation: String,
}

impl Default for AttributeMapping {
    fn default() -> Self {
        Self {
            email: "mail".into(),
            given_name: "givenName".into(),
            family_name: "sn".into(),
            affiliation: "eduPersonAffiliation".into(),
        }
    }
}

fn default_refresh_minutes() -> u64 {
    60
}

fn yes() -> bool {
    true
}

fn default_mfa_contexts() -> Vec<String> {
    vec![
        "https://refeds.org/profile/mfa".into(),
        "http://schemas.microsoft.com/claims/multipleauthn".into(),
    ]
}

impl FederationConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.sp_key_file.is_some() != self.sp_cert_file.is_some() {
            return bad("federation.sp_key_file and federation.sp_cert_file go together: set both or neither".into());
        }
        if !(0..=600).contains(&self.clock_skew_seconds) {
            return bad("federation.clock_skew_seconds must be between 0 and 600".into());
        }
        if !(60..=3600).contains(&self.request_ttl_seconds) {
            return bad("federation.request_ttl_seconds must be between 60 and 3600".into());
        }
        if self.requests_per_ip_per_minute == 0 {
            return bad("federation.requests_per_ip_per_minute must be at least 1 (raise it for schools behind one address)".into());
        }
        // One namespace for both kinds: the id picks the IdP in /login/idp/{id}.
        let mut seen = std::collections::HashSet::new();
        let ids = self
            .saml_idps
            .iter()
            .map(|i| ("saml_idps", i.id.as_str()))
            .chain(self.oidc_idps.iter().map(|i| ("oidc_idps", i.id.as_str())));
        for (list, id) in ids {
            let at = format!("federation.{list} id = {id:?}");
            let id_ok = !id.is_empty()
                && id.len() <= 40
                && id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                return bad(format!(
                    "{at}: id must be 1-40 characters of a-z, 0-9 and -, e.g. riverside-shib"
                ));
            }
            if !seen.insert(id) {
                return bad(format!("{at}: two identity providers have this id"));
            }
        }
        for idp in &self.oidc_idps {
            idp.validate()?;
        }
        for idp in &self.saml_idps {
            let at = format!("federation.saml_idps id = {:?}", idp.id);
            if idp.display_name.trim().is_empty() {
                return bad(format!(
                    "{at}: display_name is empty; it labels the sign-in button"
                ));
            }
            match (&idp.metadata_file, &idp.metadata_url) {
                (Some(_), None) => {}
                (None, Some(url)) => check_metadata_url(url)
                    .map_err(|m| ConfigError::Invalid(format!("{at}: {m}")))?,
                _ => {
                    return bad(format!(
                        "{at}: set exactly one of metadata_file and metadata_url"
                    ))
                }
            }
            if idp.metadata_refresh_minutes == 0 {
                return bad(format!("{at}: metadata_refresh_minutes must be at least 1"));
            }
            for d in &idp.email_domains {
                if d.is_empty() || d.contains('@') || d.chars().any(char::is_whitespace) {
                    return bad(format!(
                        "{at}: email_domains entry {d:?} must be a bare domain, e.g. riverside.edu"
                    ));
                }
            }
            if idp.link.attribute.trim().is_empty() {
                return bad(format!(
                    "{at}: link.attribute is empty; use NameID or an attribute name"
                ));
            }
            let field = idp.link.person_field.as_str();
            if !person_field_ok(field) {
                return bad(format!(
                    "{at}: link.person_field = {field:?} must be username, email, sourced_id or identifier:TYPE"
                ));
            }
        }
        Ok(())
    }
}

/// A directory field a link value can be looked up in.
pub(super) fn person_field_ok(field: &str) -> bool {
    matches!(field, "username" | "email" | "sourced_id")
        || field
            .strip_prefix("identifier:")
            .is_some_and(|t| !t.is_empty())
}

/// What every "must be https" message adds: the one exception, and how it is spelled.
pub(super) const LOOPBACK_HTTP: &str =
    "plain http is allowed only on this machine: http://127.0.0.1, http://localhost or http://[::1]";

/// Metadata carries the keys we trust, so it must come over TLS (plain HTTP only from
/// this machine, for tests and sidecars).
pub(super) fn check_metadata_url(url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|_| format!("metadata_url {url:?} is not a URL"))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "metadata_url {url:?} must be https (metadata carries the keys the hub trusts); {LOOPBACK_HTTP}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idp(toml_text: &str) -> Result<(), ConfigError> {
        let cfg: FederationConfig =
            toml::from_str(toml_text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()
    }

    #[test]
    fn a_plain_http_metadata_url_elsewhere_is_refused() {
        let e =
            idp("[[saml_idps]]\nid='x'\ndisplay_name='X'\nmetadata_url='http://idp.example/md'\n")
                .unwrap_err()
                .to_string();
        assert!(e.contains("must be https"), "{e}");
        assert!(e.contains("127.0.0.1") && e.contains("[::1]"), "{e}");
        idp("[[saml_idps]]\nid='x'\ndisplay_name='X'\nmetadata_url='http://127.0.0.1:9/md'\n")
            .unwrap();
    }

    #[test]
    fn metadata_source_and_link_field_are_checked() {
        let e = idp("[[saml_idps]]\nid='x'\ndisplay_name='X'\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("exactly one of metadata_file and metadata_url"),
            "{e}"
        );
        let e = idp("[[saml_idps]]\nid='x'\ndisplay_name='X'\nmetadata_file='a.xml'\nlink={attribute='mail',person_field='phone'}\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("identifier:TYPE"), "{e}");
        let e = idp("[[saml_idps]]\nid='X Y'\ndisplay_name='X'\nmetadata_file='a.xml'\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("a-z, 0-9"), "{e}");
    }
}
