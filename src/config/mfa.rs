//! `[mfa]`: second factors (passkeys, TOTP, recovery codes) and who must use one.
//!
//! ```toml
//! [mfa]
//! privileged_roles = "passkey"   # "any" second factor, or only a passkey
//! enroll_at_signin = true        # first sign-in of a privileged person: set one up
//! manage_factors_max_age_seconds = 900   # the portal's factor pages want a recent one
//! ```

use serde::Deserialize;

use super::ConfigError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MfaConfig {
    /// What a person holding a privileged role (hub-admin, registrar…) needs at
    /// sign-in on top of a password: `any` second factor or a `passkey` (phishing
    /// resistant; NIST SP 800-63B §5.2.5). An upstream IdP's MFA counts as `any`.
    pub privileged_roles: String,
    /// A person who must use a second factor and has none sets one up right after
    /// the password, once (Keycloak's "required action"). Off: such a person cannot
    /// sign in until the help desk resets them; safer where passwords may be known.
    pub enroll_at_signin: bool,
    /// How long a sign-in may wait between its first and second factor.
    pub challenge_ttl_seconds: i64,
    /// Wrong codes allowed for one sign-in before it must start again (with the
    /// password, which is throttled per account and per address).
    pub max_attempts: i64,
    /// The label authenticator apps show next to the code (RFC 6238 key URI `issuer`).
    pub totp_issuer: String,
    /// The WebAuthn relying party id (WebAuthn L3 §5.1.2); defaults to the host of
    /// `server.issuer`. Passkeys are bound to it: changing it later orphans them.
    pub webauthn_rp_id: Option<String>,
    /// Recovery codes issued at a time.
    pub recovery_codes: usize,
    /// Seeing or changing one's factors in the portal needs a second factor used at
    /// most this long ago (else the portal asks for one again): a session left open
    /// on a shared computer must not be enough to swap them (NIST SP 800-63B §6.1.2.1
    /// asks for authentication at the level of the authenticator being bound).
    pub manage_factors_max_age_seconds: i64,
    /// When a role is passkey-only, a holder with only an authenticator app or recovery
    /// codes may add a passkey at sign-in after proving one of those (with
    /// `enroll_at_signin`). Off: they go through the help desk. A code can be phished
    /// (a relaying proxy could add its own passkey), but the help desk's reset leaves
    /// only the password guarding the new set-up, which is weaker still.
    pub passkey_after_code: bool,
}

impl Default for MfaConfig {
    fn default() -> Self {
        Self {
            privileged_roles: "any".into(),
            enroll_at_signin: true,
            challenge_ttl_seconds: 600,
            max_attempts: 5,
            totp_issuer: "HMS-ACH".into(),
            webauthn_rp_id: None,
            recovery_codes: 10,
            manage_factors_max_age_seconds: 900,
            passkey_after_code: true,
        }
    }
}

impl MfaConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if !matches!(self.privileged_roles.as_str(), "any" | "passkey") {
            return bad(format!(
                "mfa.privileged_roles = {:?}: use any or passkey",
                self.privileged_roles
            ));
        }
        if !(60..=3600).contains(&self.challenge_ttl_seconds) {
            return bad("mfa.challenge_ttl_seconds must be between 60 and 3600".into());
        }
        if !(1..=20).contains(&self.max_attempts) {
            return bad("mfa.max_attempts must be between 1 and 20".into());
        }
        if self.totp_issuer.trim().is_empty() || self.totp_issuer.contains(':') {
            return bad("mfa.totp_issuer must be a non-empty name without ':'".into());
        }
        if let Some(rp) = &self.webauthn_rp_id {
            let ok = !rp.is_empty()
                && rp
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            if !ok {
                return bad(format!(
                    "mfa.webauthn_rp_id = {rp:?}: use a host name such as sso.district.org"
                ));
            }
        }
        if !(4..=20).contains(&self.recovery_codes) {
            return bad("mfa.recovery_codes must be between 4 and 20".into());
        }
        if !(60..=86_400).contains(&self.manage_factors_max_age_seconds) {
            return bad("mfa.manage_factors_max_age_seconds must be between 60 and 86400".into());
        }
        Ok(())
    }
}
