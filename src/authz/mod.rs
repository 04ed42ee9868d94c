//! Authorization: casbin RBAC with org domains, the built-in role catalog, role
//! assignments scoped to the org tree, and the one guard every `/api/v1` route uses.

mod assignments;
mod catalog;
mod enforcer;
mod error;
mod guard;
mod http;
mod repo;

pub(crate) use assignments::revoke_all;
pub use assignments::{
    assign_role, list_assignments, live_roles, revoke_assignment, Assignment, NewAssignment,
};
pub use catalog::{holds_privileged_role, role_is_privileged, seed_builtin, BUILTIN_ROLES};
pub use enforcer::Authorizer;
pub use error::AuthzError;
pub use guard::{known_scopes, Action, Actor, Object, Subject};

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
}
