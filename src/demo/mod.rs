//! `serve --demo`: a small, realistic district to explore at once. Idempotent: a
//! second run finds everything in place (and issues the demo client a new secret,
//! since secrets are stored only as digests).

mod people;

use crate::audit::Origin;
use crate::directory::{upsert_org, upsert_person, OrgInput};
use crate::oidc::{create_client, list_clients, rotate_secret, Client, ClientSettings, NewClient};
use crate::AppState;

pub const DEMO_CLIENT_NAME: &str = "demo-admin";
pub const DEMO_WEB_CLIENT: &str = "Demo LMS (web app)";
pub const DEMO_SPA_CLIENT: &str = "Demo student app (SPA/mobile)";
/// The password of every demo sign-in account (set only where none is set yet).
pub const DEMO_PASSWORD: &str = "riverside-demo-2026";

/// One sign-in account per persona: (persona, sourcedId).
pub const PERSONAS: &[(&str, &str)] = &[
    ("student", "stu-0001"),
    ("teacher", "tch-002"),
    ("clinical instructor", "ci-001"),
    ("compliance officer", "stf-002"),
    ("department chair (approver, Science)", "tch-001"),
    ("hub administrator", "adm-001"),
];

pub struct DemoSummary {
    pub orgs: usize,
    pub people: usize,
    pub created: usize,
    pub client_id: String,
    pub client_secret: String,
    /// (persona, username)
    pub accounts: Vec<(String, String)>,
    pub web_client_id: String,
    pub web_client_secret: String,
    pub spa_client_id: String,
}

/// The named client, created if missing; a confidential one gets a new secret.
async fn ensure_client(
    app: &AppState,
    now: crate::clock::Timestamp,
    origin: &Origin,
    new: NewClient,
) -> Result<(Client, Option<String>), crate::error::AppError> {
    let existing = list_clients(app.store())
        .await?
        .into_iter()
        .find(|c| c.name == new.name);
    let out = match existing {
        Some(c) if c.settings.is_public() => (c, None),
        Some(c) => {
            let (c, s) = rotate_secret(
                app.store(),
                app.master_key(),
                now.as_millis(),
                origin,
                &c.id,
            )
            .await?;
            (c, Some(s))
        }
        None => create_client(app.store(), app.master_key(), now.as_millis(), origin, new).await?,
    };
    app.clients().invalidate(&out.0.id);
    Ok(out)
}

fn rp_scopes() -> Vec<String> {
    ["openid", "profile", "email", "offline_access", "roles"]
        .map(String::from)
        .to_vec()
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
    now: crate::clock::Timestamp,
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
            expires_at: None,
        };
        crate::authz::assign_role(&mut tx, app.audit_key(), now, origin, new).await?;
    }
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    Ok(())
}

pub async fn seed(app: &AppState) -> Result<DemoSummary, crate::error::AppError> {
    let origin = Origin::system("demo");
    let now = app.clock().now();
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
            upsert_org(app.store(), app.audit_key(), now, &origin, None, input)
                .await?
                .created,
        );
    }
    let people = people::demo_people();
    for p in &people {
        created += usize::from(
            upsert_person(app.store(), app.audit_key(), now, &origin, None, p.clone())
                .await?
                .created,
        );
    }
    seed_roles(app, now, &origin).await?;
    let admin = NewClient {
        name: DEMO_CLIENT_NAME.into(),
        grants: vec!["client_credentials".into()],
        scopes: crate::authz::known_scopes(),
        role: Some("hub-admin".into()),
        org: None,
        access_token_ttl_seconds: None,
        settings: ClientSettings::default(),
    };
    let (client, secret) = ensure_client(app, now, &origin, admin).await?;
    let web = NewClient {
        name: DEMO_WEB_CLIENT.into(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: rp_scopes(),
        role: None,
        org: None,
        access_token_ttl_seconds: None,
        settings: ClientSettings {
            redirect_uris: vec![
                "http://127.0.0.1:8081/callback".into(),
                "http://localhost:8081/callback".into(),
            ],
            post_logout_redirect_uris: vec![
                "http://127.0.0.1:8081/".into(),
                "http://localhost:8081/".into(),
            ],
            ..ClientSettings::default()
        },
    };
    let (web, web_secret) = ensure_client(app, now, &origin, web).await?;
    let spa = NewClient {
        name: DEMO_SPA_CLIENT.into(),
        grants: vec!["authorization_code".into(), "refresh_token".into()],
        scopes: rp_scopes(),
        role: None,
        org: None,
        access_token_ttl_seconds: None,
        settings: ClientSettings {
            client_type: "public".into(),
            token_endpoint_auth_method: "none".into(),
            first_party: true,
            redirect_uris: vec![
                "http://127.0.0.1:5173/callback".into(),
                "http://localhost:5173/callback".into(),
                "org.riverside.studentapp:/oauth2redirect".into(),
            ],
            post_logout_redirect_uris: vec![
                "http://127.0.0.1:5173/".into(),
                "http://localhost:5173/".into(),
            ],
            ..ClientSettings::default()
        },
    };
    let (spa, _) = ensure_client(app, now, &origin, spa).await?;
    let mut accounts = Vec::new();
    for (persona, sourced) in PERSONAS {
        let person = crate::directory::get_person(app.store(), sourced).await?;
        if !crate::authn::has_password(app, &person.id).await? {
            crate::authn::set_password(app, &person, DEMO_PASSWORD, false, &origin).await?;
        }
        accounts.push((
            persona.to_string(),
            person.username.clone().unwrap_or_default(),
        ));
    }
    Ok(DemoSummary {
        orgs: ORGS.len(),
        people: people.len(),
        created,
        client_id: client.id,
        client_secret: secret.unwrap_or_default(),
        accounts,
        web_client_id: web.id,
        web_client_secret: web_secret.unwrap_or_default(),
        spa_client_id: spa.id,
    })
}
