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
    #[error("the identity provider did not sign you in (status {0}); try again or contact its help desk")]
    IdpStatus(String),
    #[error(
        "this sign-in has already been used or has expired; start again from the sign-in page"
    )]
    Expired,
    #[error("this sign-in was started in another browser; start again from the sign-in page in this one")]
    OtherBrowser,
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
            FederationError::IdpStatus(_) => "idp_status",
            FederationError::Expired => "expired",
            FederationError::OtherBrowser => "other_browser",
            FederationError::MissingAttribute(_) => "missing_attribute",
            FederationError::OutOfScope(_) => "out_of_scope",
            FederationError::NoMatch { .. } => "no_match",
            FederationError::Ambiguous { .. } => "ambiguous",
            FederationError::Pending => "pending",
            FederationError::Inactive(_) => "inactive",
            FederationError::Credentials(_) => "credentials",
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

impl From<sqlx::Error> for FederationError {
    fn from(e: sqlx::Error) -> Self {
        FederationError::Store(e.into())
    }
}
