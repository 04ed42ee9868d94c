//! HMS-ACH, the Access & Credentials Hub.
//!
//! One module per capability (see `DESIGN.md` in the shared folder and `docs/ARCHITECTURE.md`):
//! `directory` (people, orgs, affiliations), `oidc` (clients, keys, tokens),
//! `authz` (casbin guard, role assignments), `audit` (hash-chained log),
//! `ops` (health, metrics, HTTP middleware) and `store` (database, migrations).
//! `app` wires them into one [`AppState`] and one router; `cli` holds what the
//! binary's sub-commands do, so that `main.rs` is argument parsing only.

pub mod api;
pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod demo;
pub mod directory;
pub mod error;
pub mod federation;
pub mod input;
pub mod jobs;
pub mod mail;
pub mod oidc;
pub mod ops;
pub mod outbox;
pub mod store;
pub mod web;

#[cfg(test)]
mod tests;

pub use app::{build_router, AppState};
pub use clock::{Clock, SystemClock};
pub use config::Config;
pub use error::AppError;
