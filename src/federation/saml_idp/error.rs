use crate::store::StoreError;

/// Why the hub, as a SAML identity provider, could not answer a downstream app.
/// `Page` errors are shown to the person (the app could not be trusted with an
/// answer); the messages say what happened and never echo unverified input.
#[derive(Debug, thiserror::Error)]
pub enum SamlIdpError {
    #[error("the app that sent you here is not registered with the hub as a SAML app")]
    UnknownSp,
    #[error("the app's SAML metadata could not be loaded; its administrator must fix it")]
    MetadataUnavailable,
    #[error("the metadata is not usable: {0}")]
    BadMetadata(String),
    /// The AuthnRequest failed a check before the app's answer address was known to be
    /// good (SAML profiles §4.1.4.1): a page, never a Response. `reason` is a stable code.
    #[error("the app sent a sign-in request the hub cannot accept ({reason}): {detail}")]
    BadRequest {
        reason: &'static str,
        detail: String,
    },
    #[error("the hub's SAML key could not be used: {0}")]
    Credentials(String),
    #[error("signing the SAML response failed: {0}")]
    Signing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SamlIdpError {
    pub fn bad(reason: &'static str, detail: impl Into<String>) -> Self {
        SamlIdpError::BadRequest {
            reason,
            detail: detail.into(),
        }
    }

    /// A stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            SamlIdpError::UnknownSp => "unknown_sp",
            SamlIdpError::MetadataUnavailable | SamlIdpError::BadMetadata(_) => "metadata",
            SamlIdpError::BadRequest { reason, .. } => reason,
            SamlIdpError::Credentials(_) => "credentials",
            SamlIdpError::Signing(_) => "signing",
            SamlIdpError::Store(_) => "store",
        }
    }

    /// The hub's own failure, not the app's or the person's.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            SamlIdpError::Credentials(_) | SamlIdpError::Signing(_) | SamlIdpError::Store(_)
        )
    }
}
