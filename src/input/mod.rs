//! The one input rule (DESIGN.md, "Input"): no text the hub accepts holds NUL or
//! another control character, and names and usernames hold no bidirectional
//! overrides or invisible characters, prepared as the PRECIS profiles say.
//!
//! `edge` enforces the first part on every request before a handler sees it;
//! `rule` holds the character classes and the preparation of names and usernames
//! that the validators (`directory::validate`, client registration) apply per field.

pub mod edge;
mod rule;

pub use rule::{
    code_point, find_control, prepare_name, prepare_username, refused_as_lookalike,
    refused_in_name, Refused,
};
