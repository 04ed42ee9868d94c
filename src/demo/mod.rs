//! `serve --demo`: a small, realistic district to explore at once. Idempotent: a
//! second run finds everything in place (and issues the demo client a new secret,
//! since secrets are stored only as digests).

mod people;

use crate::audit::Origin;
use crate::directory::{upsert_org, upsert_person, OrgInput};
use crate::oidc::{create_client, list_clients, rotate_secret, NewClient};
use crate::AppState;

pub const DEMO_CLIENT_NAME: &str = "demo-admin";

pub struct DemoSummary {
    pub orgs: usize,
    pub people: usize,
    pub created: usize,
    pub client_id: String,
    pub client_secret: String,
}

/// (sourcedId, kind, name, parent sourcedId, identifier)
type DemoOrg = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

const ORGS: &[DemoOrg] = &[
    (
        "rusd",
        "district",
        "Riverside Unified School District",
        None,
        Some("0601234"),
    ),
    (
        "rhs",
        "school",
        "Riverside High School",
        Some("rusd"),
        Some("060123400001"),
    ),
    (
        "lms",
        "school",
        "Lincoln Middle School",
        Some("rusd"),
        Some("060123400002"),
    ),
    (
        "oge",
        "school",
        "Oak Grove Elementary School",
        Some("rusd"),
        Some("060123400003"),
    ),
    (
        "rhs-science",
        "department",
        "RHS Science Department",
        Some("rhs"),
        None,
    ),
    (
        "rhs-math",
        "department",
        "RHS Mathematics Department",
        Some("rhs"),
        None,
    ),
    (
        "rnah",
        "program",
        "Riverside Nursing & Allied Health Program",
        Some("rusd"),
        None,
    ),
    (
        "rnah-nursing",
        "department",
        "Nursing Department",
        Some("rnah"),
        None,
    ),
    (
        "rgh",
        "clinical_site",
        "Riverside General Hospital",
        Some("rnah"),
        None,
    ),
];

/// (person sourcedId, role, org sourcedId or hub-wide): the personas of the demo.
const ROLES: &[(&str, &str, Option<&str>)] = &[
    ("adm-001", "hub-admin", None),
    ("stf-001", "registrar", Some("rusd")),
    ("stf-002", "compliance-officer", Some("rusd")),
    ("adm-003", "compliance-officer", Some("rnah")),
    ("tch-001", "approver", Some("rhs-science")),
];

/// Gives the demo's personas their roles (granting a held role changes nothing).
async fn seed_roles(
    app: &AppState,
    now: i64,
    origin: &Origin,
) -> Result<(), crate::error::AppError> {
    let mut tx = app.store().begin().await?;
    for (person, role, org) in ROLES {
        let person = crate::directory::get_person(app.store(), person).await?;
        let org_id = match org {
            Some(o) => crate::directory::resolve_org(app.store(), o).await?,
            None => None,
        };
        let new = crate::authz::NewAssignment {
            subject: crate::authz::Subject::Person(person.id),
            role: (*role).into(),
            org_id,
            expires_at_ms: None,
        };
        crate::authz::assign_role(&mut tx, app.store().audit_key(), now, origin, new).await?;
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}

pub async fn seed(app: &AppState) -> Result<DemoSummary, crate::error::AppError> {
    let origin = Origin::system("demo");
    let now = app.clock().now_ms();
    let mut created = 0;
    for (sourced_id, kind, name, parent, identifier) in ORGS {
        let input = OrgInput {
            sourced_id: (*sourced_id).into(),
            kind: (*kind).into(),
            name: (*name).into(),
            identifier: identifier.map(str::to_string),
            parent: parent.map(str::to_string),
            status: Some("active".into()),
        };
        created += usize::from(
            upsert_org(app.store(), now, &origin, None, input)
                .await?
                .created,
        );
    }
    let people = people::demo_people();
    for p in &people {
        created += usize::from(
            upsert_person(app.store(), now, &origin, None, p.clone())
                .await?
                .created,
        );
    }
    seed_roles(app, now, &origin).await?;
    let existing = list_clients(app.store())
        .await?
        .into_iter()
        .find(|c| c.name == DEMO_CLIENT_NAME);
    let (client, secret) = match existing {
        Some(c) => rotate_secret(app.store(), app.master_key(), now, &origin, &c.id).await?,
        None => {
            let new = NewClient {
                name: DEMO_CLIENT_NAME.into(),
                grants: vec!["client_credentials".into()],
                scopes: crate::authz::known_scopes(),
                role: Some("hub-admin".into()),
                org: None,
                access_token_ttl_seconds: None,
            };
            create_client(app.store(), app.master_key(), now, &origin, new).await?
        }
    };
    app.clients().invalidate(&client.id);
    Ok(DemoSummary {
        orgs: ORGS.len(),
        people: people.len(),
        created,
        client_id: client.id,
        client_secret: secret,
    })
}
