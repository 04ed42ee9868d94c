use crate::audit::AuditError;
use crate::directory::DirectoryError;
use crate::store::StoreError;

/// Why an upstream sign-in did not go through. The messages are shown to the person
/// (after "Signing in with {IdP} failed: "), so they say what happened and what to
/// do, and never echo unverified input.
#[derive(Debug, thiserror::Error)]
pub enum FederationError {
    #[error("there is no identity provider called {0:?}")]
    UnknownIdp(String),
    #[error("the identity provider's metadata could not be loaded; try again later")]
    MetadataUnavailable,
    #[error("the metadata is not usable: {0}")]
    BadMetadata(String),
    /// The SAMLResponse failed a check; `reason` is a stable code for logs, audit and metrics.
    #[error("the identity provider's answer was not accepted ({reason}); start again from the sign-in page")]
    Rejected {
        reason: &'static str,
        detail: String,
    },
    /// An encrypted assertion that could not be decrypted, or whose plaintext was not a
    /// well-formed, signed assertion. One code for every such failure (a padding
    /// oracle otherwise); the detail is for the debug log only and holds no secret.
    #[error("the identity provider's encrypted answer could not be decrypted and verified; start again from the sign-in page, and if it happens again ask the identity provider's administrator to encrypt for the hub's current certificate (in the hub's SP metadata)")]
    Undecryptable(String),
    /// The IdP encrypts with an algorithm the hub refuses; its administrator can fix it.
    #[error("the identity provider encrypts its answer with {used}, which the hub does not accept; its administrator must {fix}")]
    EncryptionRefused {
        code: &'static str,
        used: &'static str,
        fix: &'static str,
    },
    /// The IdP signs with an algorithm the hub refuses (SHA-1); its administrator can
    /// fix it, so the page says how.
    #[error("the identity provider signs its answer with {used}, which the hub does not accept; its administrator must {fix}")]
    SigningRefused {
        code: &'static str,
        used: &'static str,
        fix: &'static str,
    },
    #[error("the identity provider did not sign you in (status {0}); try again or contact its help desk")]
    IdpStatus(String),
    #[error(
        "this sign-in has already been used or has expired; start again from the sign-in page"
    )]
    Expired,
    /// The IdP answered a request of ours after `request_ttl_seconds`.
    #[error("the sign-in at the identity provider took longer than the hub waits for it; start again from the sign-in page")]
    RequestTimedOut,
    /// The sign-in was begun in another browser; `idp` is the IdP's id, so the page
    /// can name it.
    #[error("this sign-in was started in another browser; start again from the sign-in page in this one")]
    OtherBrowser { idp: String },
    /// A claim in the provider's token response that the hub cannot read (a wrong
    /// type: `email_verified: "yes"`, a string `exp`). The provider's answer is wrong,
    /// so trying again gives the same answer: the people who run it must change it.
    #[error("the identity provider's answer has a value the hub cannot read in its {0} claim, so trying again will not help; contact the district IT office, who must have the provider's configuration corrected")]
    UnreadableClaim(String),
    #[error(
        "your account at the identity provider does not say {0}, which the hub needs to find you"
    )]
    MissingAttribute(String),
    #[error("this identity provider may not sign in people from {0}; use the sign-in service of that domain")]
    OutOfScope(String),
    /// No directory person has the asserted value (and just-in-time creation is off).
    #[error("no one in the district directory has the {field} {value:?}; ask the help desk to add it to your record")]
    NoMatch { field: String, value: String },
    #[error("several people in the district directory have the {field} {value:?}; ask the help desk to make it unique")]
    Ambiguous { field: String, value: String },
    /// Just-in-time created, or created earlier and still waiting.
    #[error("your account has been created and is waiting for an administrator to approve it")]
    Pending,
    #[error("this account is {0}; ask the registrar or your administrator")]
    Inactive(String),
    #[error("the hub's SAML key could not be used: {0}")]
    Credentials(String),
    /// The OpenID Provider answered with `error=` (RFC 6749 §4.1.2.1, OpenID Connect
    /// Core §3.1.2.6); only a code from those lists is kept, never the IdP's text.
    #[error("the identity provider did not sign you in ({0}); try again or contact its help desk")]
    IdpError(&'static str),
    /// A callback without the parameters of an authorization response.
    #[error(
        "the identity provider's answer was incomplete ({0}); start again from the sign-in page"
    )]
    BadCallback(&'static str),
    /// The code could not be exchanged; the detail is for the log only.
    #[error("the identity provider did not complete the sign-in; try again shortly")]
    TokenExchange(String),
    /// The ID token (or the response carrying it) failed a check of OpenID Connect
    /// Core §3.1.3.7; each refusal has its own code.
    #[error("the identity provider's answer was not accepted ({}); start again from the sign-in page", .0.code())]
    IdToken(IdTokenRefusal),
    /// Google Workspace: the account is not in an allowed hosted domain (`hd`).
    #[error("accounts of {0} may not sign in here; use your district account")]
    HostedDomain(String),
    /// Microsoft Entra ID: the account is not in an allowed tenant (`tid`).
    #[error("accounts of this organization's Microsoft tenant may not sign in here; use your district account")]
    Tenant(String),
    #[error("the identity provider has not verified your e-mail address; verify it there or ask the help desk")]
    EmailNotVerified,
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl FederationError {
    pub(super) fn rejected(reason: &'static str, detail: impl Into<String>) -> Self {
        FederationError::Rejected {
            reason,
            detail: detail.into(),
        }
    }

    /// A short stable code: the audit outcome reason and the metrics label.
    pub fn code(&self) -> &'static str {
        match self {
            FederationError::UnknownIdp(_) => "unknown_idp",
            FederationError::MetadataUnavailable | FederationError::BadMetadata(_) => "metadata",
            FederationError::Rejected { reason, .. } => reason,
            FederationError::Undecryptable(_) => "decryption",
            FederationError::EncryptionRefused { code, .. } => code,
            FederationError::SigningRefused { code, .. } => code,
            FederationError::IdpStatus(_) => "idp_status",
            FederationError::Expired => "expired",
            FederationError::RequestTimedOut => "request_timed_out",
            FederationError::OtherBrowser { .. } => "other_browser",
            FederationError::UnreadableClaim(_) => "unreadable_claim",
            FederationError::MissingAttribute(_) => "missing_attribute",
            FederationError::OutOfScope(_) => "out_of_scope",
            FederationError::NoMatch { .. } => "no_match",
            FederationError::Ambiguous { .. } => "ambiguous",
            FederationError::Pending => "pending",
            FederationError::Inactive(_) => "inactive",
            FederationError::Credentials(_) => "credentials",
            FederationError::IdpError(_) => "idp_error",
            FederationError::BadCallback(_) => "bad_callback",
            FederationError::TokenExchange(_) => "token_exchange",
            FederationError::IdToken(r) => r.code(),
            FederationError::HostedDomain(_) => "hd",
            FederationError::Tenant(_) => "tid",
            FederationError::EmailNotVerified => "email_unverified",
            FederationError::Directory(_)
            | FederationError::Store(_)
            | FederationError::Audit(_) => "internal",
        }
    }

    /// Errors the person can act on (shown as they are) versus the service's own.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            FederationError::Directory(_)
                | FederationError::Store(_)
                | FederationError::Audit(_)
                | FederationError::Credentials(_)
        )
    }
}

/// Why an upstream ID token was refused (OpenID Connect Core §3.1.3.7). The text is
/// for the log; `code()` is what people, metrics and the audit log see.
#[derive(Debug, thiserror::Error)]
pub enum IdTokenRefusal {
    #[error("the token response carried no ID token")]
    Missing,
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    #[error("signature: {0}")]
    Signature(String),
    /// The `iss` claim (step 2) or the authorization response's `iss` (RFC 9207 §2.4).
    #[error("issuer: {0}")]
    Issuer(String),
    #[error("audience: {0}")]
    Audience(String),
    #[error("authorized party: {0}")]
    AuthorizedParty(String),
    #[error("expired: {0}")]
    Expired(String),
    #[error("issued at: {0}")]
    IssuedAt(String),
    #[error("nonce: {0}")]
    Nonce(String),
    #[error("auth_time: {0}")]
    AuthTime(String),
}

impl IdTokenRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            IdTokenRefusal::Missing => "no_id_token",
            IdTokenRefusal::Malformed(_) => "malformed",
            IdTokenRefusal::Signature(_) => "signature",
            IdTokenRefusal::Issuer(_) => "issuer",
            IdTokenRefusal::Audience(_) => "audience",
            IdTokenRefusal::AuthorizedParty(_) => "azp",
            IdTokenRefusal::Expired(_) => "token_expired",
            IdTokenRefusal::IssuedAt(_) => "issued_at",
            IdTokenRefusal::Nonce(_) => "nonce",
            IdTokenRefusal::AuthTime(_) => "auth_time",
        }
    }
}

impl From<sqlx::Error> for FederationError {
    fn from(e: sqlx::Error) -> Self {
        FederationError::Store(e.into())
    }
}
