//! The directory: orgs (district → school → department/program, clinical sites),
//! people, their kinds, identifiers, affiliations and lifecycle status.

mod error;
mod http;
mod model;
mod orgs;
mod patch;
mod people;
mod people_repo;
mod validate;

pub use error::DirectoryError;
pub use model::{
    AffiliationInput, Org, OrgInput, Person, PersonInput, PersonStatus, PostalAddress, PERSON_KINDS,
};
pub use orgs::{
    find_org_by_sourced_id, get_org, list_orgs, org_ancestry, patch_org, resolve_org, upsert_org,
    OrgFilter,
};
pub use people::{
    find_people_by_field, find_person_by_login, get_person, get_person_core, list_people,
    patch_person, transition_person, upsert_person, PersonFilter, Upserted,
};
pub use people_repo::{person_from_row, prefixed_columns as person_columns};
pub use validate::{check_person as validate_person, npi_check_digit};

pub(crate) use http::find_person_for;

pub fn router() -> axum::Router<crate::AppState> {
    http::router()
}
