use crate::audit::AuditError;
use crate::authz::AuthzError;
use crate::error::FieldError;
use crate::store::StoreError;

/// The OAuth 2.0 error codes the provider answers with (RFC 6749 §4.1.2.1 and §5.2,
/// RFC 7009 §2.2.1, RFC 9449 §5). What status each is sent with is the HTTP edge's
/// business (`error_response.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    UnsupportedTokenType,
    InvalidGrant,
    InvalidDpopProof,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::UnsupportedTokenType => "unsupported_token_type",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::InvalidDpopProof => "invalid_dpop_proof",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// Why the provider refused or failed a request: what the domain code (grants,
/// clients, tokens, refresh, consent) returns. It knows nothing of HTTP; the edge
/// turns it into an RFC 6749 JSON error once (`error_response.rs`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", .code.as_str())]
pub struct OidcError {
    pub code: OAuthCode,
    pub description: String,
    /// The client authenticated with HTTP Basic: RFC 6749 §5.2 then wants the
    /// challenge for the same scheme in the answer.
    pub basic_challenge: bool,
}

impl OidcError {
    fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>, basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(OAuthCode::InvalidClient, d)
        }
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::UnauthorizedClient, d)
    }
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::UnsupportedGrantType, d)
    }
    /// RFC 7009 §2.2.1.
    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::UnsupportedTokenType, d)
    }
    /// Another code, as a pushed authorization request's check found it (RFC 9126 §2.3).
    pub fn with_code(code: OAuthCode, d: impl Into<String>) -> Self {
        Self::new(code, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, d)
    }
    /// RFC 9449 §5.
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidDpopProof, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidScope, d)
    }
    /// A failure of the server's own (RFC 6749 §4.1.2.1 defines `server_error` for
    /// it), logged here with the request's span; the client learns nothing more.
    ///
    /// When the database cannot take the request now (disk full, down, frozen) the
    /// answer is `temporarily_unavailable` (RFC 6749 §4.1.2.1 names that code for the
    /// same condition): a client retries it, and nothing about a token's validity is
    /// implied.
    pub fn server_error<E: std::fmt::Display + 'static>(internal: E) -> Self {
        if let Some(reason) = crate::error::transient_reason(&internal) {
            crate::error::unavailable_logged(reason, &internal.to_string());
            return Self::temporarily_unavailable(reason);
        }
        tracing::error!(error = %internal, "token endpoint failed");
        Self::new(
            OAuthCode::ServerError,
            "the server could not issue a token; try again later",
        )
    }
    pub fn temporarily_unavailable(reason: &str) -> Self {
        Self::new(
            OAuthCode::TemporarilyUnavailable,
            format!("the server cannot answer now ({reason}); try again in a few seconds"),
        )
    }
}

/// A storage failure inside a grant, code or token step: a failure of the server's
/// own, or `temporarily_unavailable` when the database cannot answer now.
impl From<StoreError> for OidcError {
    fn from(e: StoreError) -> Self {
        OidcError::server_error(e)
    }
}

/// An `error_description` as RFC 6749 §5.2 (and §4.1.2.1, RFC 6750 §3) allows it:
/// only `%x20-21 / %x23-5B / %x5D-7E`. Every description the hub sends goes through
/// here: the sign that names a section becomes "Sec. ", quotes become
/// apostrophes, a backslash a slash, typographic dashes and ellipses their ASCII
/// forms, line breaks spaces, anything else a `?` (never dropped silently, so a
/// value cannot be made to look like another by removing characters).
pub fn error_description(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E' => out.push(c),
            '"' | '\u{2018}' | '\u{2019}' | '\u{201C}' | '\u{201D}' => out.push('\''),
            '\\' => out.push('/'),
            '\u{A7}' => out.push_str("Sec. "),
            '\u{2013}' | '\u{2014}' | '\u{2010}' | '\u{2011}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\n' | '\r' | '\t' | '\u{A0}' => out.push(' '),
            _ => out.push('?'),
        }
    }
    // "Sec. " before a space or at the end leaves a doubled or trailing space.
    out.replace("Sec.  ", "Sec. ").trim_end().to_string()
}

/// True when every character is one RFC 6749 §5.2 allows in `error_description`.
#[cfg(test)]
pub(super) fn is_rfc6749_description(text: &str) -> bool {
    text.bytes().all(|b| {
        (0x20..=0x21).contains(&b) || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid client registration")]
    Invalid(Vec<FieldError>),
    #[error("no client {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Authz(#[from] AuthzError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<sqlx::Error> for ClientError {
    fn from(e: sqlx::Error) -> Self {
        ClientError::Store(e.into())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot decrypt signing key {kid}: the database was set up with a different master key. Set keys.master_key (or HMS_ACH__KEYS__MASTER_KEY) to the key used when it was created")]
    WrongMasterKey { kid: String },
    #[error("cryptography failure: {0}")]
    Crypto(String),
    #[error("no active {0} signing key")]
    NoKey(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KeyError {
    fn from(e: sqlx::Error) -> Self {
        KeyError::Store(e.into())
    }
}

/// A key change's audit event that cannot be written is the store's failure (a full
/// disk is a 503 with `Retry-After`, not a cryptography failure).
impl From<AuditError> for KeyError {
    fn from(e: AuditError) -> Self {
        match e {
            AuditError::Store(s) => KeyError::Store(s),
            AuditError::BadFilter(m) => KeyError::Crypto(m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_descriptions_use_only_rfc6749_characters() {
        // Every Unicode scalar value, alone and inside text, comes out allowed.
        for c in (0u32..=0x10FFFF).filter_map(char::from_u32) {
            let d = error_description(&format!("a{c}b"));
            assert!(is_rfc6749_description(&d), "U+{:04X} gave {d:?}", c as u32);
        }
        assert_eq!(
            error_description("send it as form data (RFC 6749 §3.2)"),
            "send it as form data (RFC 6749 Sec. 3.2)"
        );
        assert_eq!(
            error_description("response_type \"x\" \\ y"),
            "response_type 'x' / y"
        );
        assert_eq!(error_description("line\nbreak\u{0}"), "line break?");
        assert_eq!(error_description("plain text stays"), "plain text stays");
    }
}
