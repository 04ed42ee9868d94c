//! `[[federation.oidc_idps]]`: upstream OpenID Providers the hub signs people in at, as
//! a relying party (Google Workspace, Microsoft Entra ID, Okta, any provider with
//! OpenID Connect Discovery).
//!
//! ```toml
//! [[federation.oidc_idps]]
//! id = "google"
//! display_name = "Riverside Google account"
//! issuer = "https://accounts.google.com"
//! client_id = "1234.apps.googleusercontent.com"
//! client_secret_env = "GOOGLE_CLIENT_SECRET"
//! email_domains = ["riverside.k12.example"]
//! allowed_hd = ["riverside.k12.example"]
//! ```

use serde::Deserialize;
use std::path::PathBuf;

use super::ConfigError;

/// One upstream OpenID Provider.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIdpConfig {
    /// Short name used in URLs: `/login/idp/{id}`, `/login/oidc/{id}/callback`.
    pub id: String,
    /// What the sign-in page's button says ("Sign in with …").
    pub display_name: String,
    /// The provider's issuer identifier; its discovery document is read from
    /// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4).
    pub issuer: String,
    pub client_id: String,
    /// The client secret, from a file (first line) or an environment variable, never
    /// inline: config files get copied, printed and committed.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// How often the discovery document and the provider's keys are read again.
    #[serde(default = "default_refresh_minutes")]
    pub discovery_refresh_minutes: u64,
    /// Home-realm discovery, and the only domains a scoped link value
    /// (user@domain) may have.
    #[serde(default)]
    pub email_domains: Vec<String>,
    #[serde(default)]
    pub link: OidcLinkConfig,
    #[serde(default)]
    pub attributes: ClaimMapping,
    #[serde(default)]
    pub just_in_time: bool,
    /// Google Workspace: the ID token's `hd` (hosted domain) claim must be one of these.
    /// Without it any Google account (gmail.com too) could sign in.
    #[serde(default)]
    pub allowed_hd: Vec<String>,
    /// Microsoft Entra ID: the ID token's `tid` (tenant id) claim must be one of these.
    #[serde(default)]
    pub allowed_tid: Vec<String>,
    /// `amr` values (RFC 8176 §2) that mean the provider used more than one factor.
    #[serde(default = "default_mfa_amr")]
    pub mfa_amr: Vec<String>,
    /// `acr` values that mean the same (e.g. REFEDS MFA).
    #[serde(default = "default_mfa_acr")]
    pub mfa_acr: Vec<String>,
    /// Sent as `prompt` on every request (e.g. `select_account` for Google).
    #[serde(default)]
    pub prompt: Option<String>,
    /// Sent as `max_age`: the provider must have authenticated the person this recently
    /// (the ID token's `auth_time` is checked, OpenID Connect Core §3.1.3.7 step 13).
    #[serde(default)]
    pub max_age_seconds: Option<u64>,
    /// Use an `email` link claim only when the ID token says `email_verified: true`.
    #[serde(default = "yes")]
    pub require_email_verified: bool,
    /// `client_secret_basic` or `client_secret_post` (Core §9); none: basic, unless
    /// the provider's discovery offers only post.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
}

/// Never prints the secret's source content; names are harmless.
impl std::fmt::Debug for OidcIdpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcIdpConfig")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcLinkConfig {
    /// The ID token claim that finds the person: `email`, `preferred_username`, `upn`,
    /// `sub`, or any other claim the provider sends.
    pub claim: String,
    /// `username`, `email`, `sourced_id` or `identifier:TYPE`.
    pub person_field: String,
}

impl Default for OidcLinkConfig {
    fn default() -> Self {
        Self {
            claim: "email".into(),
            person_field: "email".into(),
        }
    }
}

/// Which claims carry a new person's details (just-in-time creation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimMapping {
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    /// A claim whose values are eduPerson affiliations (student, faculty, staff);
    /// empty: none.
    pub affiliation: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            email: "email".into(),
            given_name: "given_name".into(),
            family_name: "family_name".into(),
            affiliation: String::new(),
        }
    }
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
}

fn default_refresh_minutes() -> u64 {
    60
}

fn yes() -> bool {
    true
}

/// RFC 8176 §2: mfa and mca say so outright; otp, hwk, swk, sc and fpt are factors
/// a provider adds on top of a password.
fn default_mfa_amr() -> Vec<String> {
    ["mfa", "mca", "otp", "hwk", "swk", "sc", "fpt"]
        .map(String::from)
        .to_vec()
}

fn default_mfa_acr() -> Vec<String> {
    vec![
        "https://refeds.org/profile/mfa".into(),
        "http://schemas.openid.net/pape/policies/2007/06/multi-factor".into(),
    ]
}

impl OidcIdpConfig {
    /// The client secret (first line of the file, or the variable), for use at start.
    pub fn client_secret(&self) -> Result<String, String> {
        let secret = match (&self.client_secret_file, &self.client_secret_env) {
            (Some(path), None) => std::fs::read_to_string(path)
                .map_err(|e| format!("client_secret_file {}: {e}", path.display()))?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| {
                    format!("the environment variable {var} (client_secret_env) is not set")
                })?
                .trim()
                .to_string(),
            _ => return Err("set exactly one of client_secret_file and client_secret_env".into()),
        };
        if secret.is_empty() {
            return Err("the client secret is empty".into());
        }
        Ok(secret)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let at = format!("federation.oidc_idps id = {:?}", self.id);
        let bad = |m: String| Err(ConfigError::Invalid(format!("{at}: {m}")));
        if self.display_name.trim().is_empty() {
            return bad("display_name is empty; it labels the sign-in button".into());
        }
        if let Err(m) = check_issuer(&self.issuer) {
            return bad(m);
        }
        if self.client_id.trim().is_empty() || self.client_id.len() > 255 {
            return bad(
                "client_id must be 1-255 characters (from the provider's app registration)".into(),
            );
        }
        if let Err(m) = self.client_secret() {
            return bad(m);
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            return bad("scopes must include openid".into());
        }
        if let Some(s) = self.scopes.iter().find(|s| {
            s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        }) {
            return bad(format!(
                "scope {s:?} is not a valid scope token (RFC 6749 §3.3)"
            ));
        }
        if self.discovery_refresh_minutes == 0 {
            return bad("discovery_refresh_minutes must be at least 1".into());
        }
        for d in &self.email_domains {
            if d.is_empty() || d.contains('@') || d.chars().any(char::is_whitespace) {
                return bad(format!(
                    "email_domains entry {d:?} must be a bare domain, e.g. riverside.k12.example"
                ));
            }
        }
        if self.link.claim.trim().is_empty() {
            return bad("link.claim is empty; use email, preferred_username, sub, …".into());
        }
        if !super::federation::person_field_ok(&self.link.person_field) {
            return bad(format!(
                "link.person_field = {:?} must be username, email, sourced_id or identifier:TYPE",
                self.link.person_field
            ));
        }
        if self
            .allowed_hd
            .iter()
            .any(|d| d.trim().is_empty() || d.contains('@'))
        {
            return bad(
                "allowed_hd entries are Google Workspace domains, e.g. riverside.k12.example"
                    .into(),
            );
        }
        if self.allowed_tid.iter().any(|t| !is_guid(t)) {
            return bad("allowed_tid entries are Entra tenant ids (GUIDs, e.g. 9188040d-6c67-4c5b-b112-36a304b66dad)".into());
        }
        if let Some(p) = &self.prompt {
            let ok = !p.trim().is_empty()
                && p.split(' ')
                    .all(|v| matches!(v, "login" | "consent" | "select_account"));
            if !ok {
                return bad(format!(
                    "prompt = {p:?}: use login, consent and/or select_account (none would always fail: the person must be able to sign in)"
                ));
            }
        }
        if let Some(m) = &self.token_endpoint_auth_method {
            if !matches!(m.as_str(), "client_secret_basic" | "client_secret_post") {
                return bad(format!(
                    "token_endpoint_auth_method = {m:?}: use client_secret_basic or client_secret_post"
                ));
            }
        }
        if self.max_age_seconds.is_some_and(|m| m > 31_536_000) {
            return bad("max_age_seconds must be at most a year".into());
        }
        Ok(())
    }
}

/// Entra tenant ids are GUIDs (8-4-4-4-12 hex digits).
fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The issuer is where the provider's keys come from, so it must be TLS (plain HTTP only
/// on this machine, for tests and sidecars); OpenID Connect Discovery §2 also forbids a
/// query or fragment.
fn check_issuer(issuer: &str) -> Result<(), String> {
    let u = url::Url::parse(issuer).map_err(|_| format!("issuer {issuer:?} is not a URL"))?;
    if u.query().is_some() || u.fragment().is_some() {
        return Err(format!(
            "issuer {issuer:?} must not have a query or fragment (Discovery §2)"
        ));
    }
    if u.path().contains("{tenantid}")
        || u.path().contains("/common/")
        || u.path().contains("/organizations/")
    {
        return Err(format!(
            "issuer {issuer:?}: use the tenant's own issuer, https://login.microsoftonline.com/TENANT-ID/v2.0 (multi-tenant endpoints have no single issuer to check)"
        ));
    }
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!(
            "issuer {issuer:?} must be https (the provider's keys come from there); {}",
            super::federation::LOOPBACK_HTTP
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idp(extra: &str) -> Result<(), ConfigError> {
        let text = format!(
            "id='g'\ndisplay_name='G'\nissuer='https://accounts.google.com'\nclient_id='c'\nclient_secret_env='PATH'\n{extra}"
        );
        let cfg: OidcIdpConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        cfg.validate()
    }

    #[test]
    fn a_good_entry_passes_and_defaults_apply() {
        idp("").unwrap();
        let cfg: OidcIdpConfig = toml::from_str(
            "id='g'\ndisplay_name='G'\nissuer='https://i.example'\nclient_id='c'\nclient_secret_env='PATH'",
        )
        .unwrap();
        assert_eq!(cfg.scopes, ["openid", "email", "profile"]);
        assert_eq!(cfg.link.claim, "email");
        assert!(cfg.mfa_amr.contains(&"otp".to_string()));
        assert!(cfg.require_email_verified);
    }

    #[test]
    fn wrong_entries_say_what_to_fix() {
        let cases = [
            ("issuer='http://idp.example'", "must be https"),
            ("issuer='https://idp.example/?x=1'", "query or fragment"),
            (
                "issuer='https://login.microsoftonline.com/common/v2.0'",
                "tenant's own issuer",
            ),
            ("scopes=['email']", "must include openid"),
            ("allowed_tid=['riverside']", "GUIDs"),
            ("prompt='none'", "use login"),
            (
                "link={claim='email',person_field='phone'}",
                "identifier:TYPE",
            ),
            ("email_domains=['@x.org']", "bare domain"),
            (
                "token_endpoint_auth_method='private_key_jwt'",
                "client_secret_post",
            ),
        ];
        for (extra, want) in cases {
            // A later key replaces the default one in the text above.
            let text =
                format!(
                "id='g'\ndisplay_name='G'\nclient_id='c'\nclient_secret_env='PATH'\n{}{extra}\n",
                if extra.starts_with("issuer") { "" } else { "issuer='https://i.example'\n" }
            );
            let cfg: OidcIdpConfig = toml::from_str(&text).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        // The one exception is named, so that a test set-up knows how to write it.
        let text = "id='g'\ndisplay_name='G'\nclient_id='c'\nclient_secret_env='PATH'\nissuer='http://idp.example'\n";
        let e = toml::from_str::<OidcIdpConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        for loopback in ["http://127.0.0.1", "http://localhost", "http://[::1]"] {
            assert!(e.contains(loopback), "{e}");
        }
        for ok in [
            "http://127.0.0.1:9000",
            "http://localhost:9000/x",
            "http://[::1]:9000",
        ] {
            toml::from_str::<OidcIdpConfig>(&text.replace("http://idp.example", ok))
                .unwrap()
                .validate()
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let e = idp("client_secret_file='/nonexistent/secret'")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one of"), "{e}");
    }

    #[test]
    fn the_secret_comes_from_the_variable_and_is_not_in_debug_output() {
        std::env::set_var("HMS_TEST_OIDC_SECRET_X", "  s3cret-value \n");
        let cfg: OidcIdpConfig = toml::from_str(
            "id='g'\ndisplay_name='G'\nissuer='https://i.example'\nclient_id='c'\nclient_secret_env='HMS_TEST_OIDC_SECRET_X'",
        )
        .unwrap();
        assert_eq!(cfg.client_secret().unwrap(), "s3cret-value");
        assert!(!format!("{cfg:?}").contains("s3cret"));
        let missing: OidcIdpConfig = toml::from_str(
            "id='g'\ndisplay_name='G'\nissuer='https://i.example'\nclient_id='c'\nclient_secret_env='HMS_TEST_OIDC_SECRET_UNSET'",
        )
        .unwrap();
        assert!(missing.client_secret().unwrap_err().contains("is not set"));
    }
}
