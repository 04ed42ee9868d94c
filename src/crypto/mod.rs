//! The crypto kernel: the master key and the keys derived from it, sealing secrets
//! at rest, random tokens, keyed digests and constant-time comparison. Every
//! capability (`oidc`, `authn`, `federation`, `audit`, `config`, `web`) uses these,
//! so there is one implementation of each, and a secret held in memory has a type
//! whose `Debug` prints nothing.
//!
//! Protocol-defined hashes (PKCE's S256, `at_hash`, DPoP's `ath`, JWK thumbprints)
//! stay beside the protocol rule that defines them.

mod digest;
mod master_key;
mod seal;
mod secret;
mod token;

pub use digest::{constant_time_eq, sha256_hex, AuditKey};
pub use master_key::MasterKey;
pub use seal::{open, seal, SealError};
pub use secret::Secret;
pub use token::{random_bytes, random_token};
