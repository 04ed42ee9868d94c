//! SQL for people and their kinds, identifiers and affiliations.

use std::collections::{BTreeMap, HashMap};

use super::model::{Affiliation, Person, PersonInput};
use super::DirectoryError;
use crate::clock::{format_rfc3339, Timestamp};
use crate::store::{self, Tx};

const COLUMNS: &str = "id, sourced_id, status, given_name, family_name, middle_name, preferred_name, email, username, status_changed_at, status_reason, created_at, updated_at, phone_number, phone_number_verified, address";

/// Loads people with their kinds, identifiers and affiliations in four queries.
pub(super) async fn load(
    conn: &mut sqlx::AnyConnection,
    where_sql: &str,
    binds: &[String],
) -> Result<Vec<Person>, DirectoryError> {
    let people = load_core(conn, where_sql, binds).await?;
    add_details(conn, people).await
}

/// Loads only the people rows (one query): kinds, identifiers and affiliations are
/// left empty.
pub(super) async fn load_core(
    conn: &mut sqlx::AnyConnection,
    where_sql: &str,
    binds: &[String],
) -> Result<Vec<Person>, DirectoryError> {
    let sql = format!("SELECT {COLUMNS} FROM people p WHERE {where_sql}");
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(b);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter().map(|r| person_from_row(r, "")).collect()
}

/// The people columns as `p.<column> AS <prefix><column>`, for queries that join
/// the person to other tables (read back with [`person_from_row`]).
pub fn prefixed_columns(prefix: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("p.{c} AS {prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A person from a row of the people columns (named `<prefix><column>`), without
/// kinds, identifiers and affiliations.
pub fn person_from_row(r: &store::Row, prefix: &str) -> Result<Person, DirectoryError> {
    let c = |name: &str| format!("{prefix}{name}");
    let updated: i64 = store::get(r, &c("updated_at"))?;
    Ok(Person {
        id: store::get(r, &c("id"))?,
        sourced_id: store::get(r, &c("sourced_id"))?,
        status: store::get(r, &c("status"))?,
        kinds: Vec::new(),
        given_name: store::get(r, &c("given_name"))?,
        family_name: store::get(r, &c("family_name"))?,
        middle_name: store::get(r, &c("middle_name"))?,
        preferred_name: store::get(r, &c("preferred_name"))?,
        email: store::get(r, &c("email"))?,
        username: store::get(r, &c("username"))?,
        phone_number: store::get(r, &c("phone_number"))?,
        phone_number_verified: store::get::<i64>(r, &c("phone_number_verified"))? != 0,
        address: store::get::<Option<String>>(r, &c("address"))?
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    DirectoryError::Store(store::StoreError::Corrupt(format!(
                        "people.address: {e}"
                    )))
                })
            })
            .transpose()?,
        identifiers: BTreeMap::new(),
        affiliations: Vec::new(),
        status_changed_at: format_rfc3339(store::get(r, &c("status_changed_at"))?),
        status_reason: store::get(r, &c("status_reason"))?,
        created_at: format_rfc3339(store::get(r, &c("created_at"))?),
        updated_at: format_rfc3339(updated),
        updated_at_ms: updated,
    })
}

/// Fills in kinds, identifiers and affiliations (three queries).
async fn add_details(
    conn: &mut sqlx::AnyConnection,
    mut people: Vec<Person>,
) -> Result<Vec<Person>, DirectoryError> {
    if people.is_empty() {
        return Ok(people);
    }
    let ids: Vec<String> = people.iter().map(|p| p.id.clone()).collect();
    let index: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), i))
        .collect();
    let list = store::params(1, ids.len());
    for r in rows_for(
        conn,
        &format!(
            "SELECT person_id, kind FROM person_kinds WHERE person_id IN ({list}) ORDER BY kind"
        ),
        &ids,
    )
    .await?
    {
        if let Some(&i) = index.get(&store::get::<String>(&r, "person_id")?) {
            people[i].kinds.push(store::get(&r, "kind")?);
        }
    }
    for r in rows_for(
        conn,
        &format!(
            "SELECT person_id, id_type, value FROM person_identifiers WHERE person_id IN ({list})"
        ),
        &ids,
    )
    .await?
    {
        if let Some(&i) = index.get(&store::get::<String>(&r, "person_id")?) {
            people[i]
                .identifiers
                .insert(store::get(&r, "id_type")?, store::get(&r, "value")?);
        }
    }
    for r in rows_for(
        conn,
        &format!(
        "SELECT a.person_id, a.org_id, o.sourced_id, a.role, a.is_primary, a.begin_date, a.end_date \
         FROM affiliations a JOIN orgs o ON o.id = a.org_id WHERE a.person_id IN ({list}) ORDER BY a.is_primary DESC, o.sourced_id, a.role"
        ),
        &ids,
    )
    .await?
    {
        if let Some(&i) = index.get(&store::get::<String>(&r, "person_id")?) {
            people[i].affiliations.push(Affiliation {
                org_id: store::get(&r, "org_id")?,
                org_sourced_id: store::get(&r, "sourced_id")?,
                role: store::get(&r, "role")?,
                primary: store::get::<i64>(&r, "is_primary")? != 0,
                begin_date: store::get(&r, "begin_date")?,
                end_date: store::get(&r, "end_date")?,
            });
        }
    }
    Ok(people)
}

async fn rows_for(
    conn: &mut sqlx::AnyConnection,
    sql: &str,
    ids: &[String],
) -> Result<Vec<store::Row>, sqlx::Error> {
    let mut q = sqlx::query(sql);
    for id in ids {
        q = q.bind(id.as_str());
    }
    q.fetch_all(conn).await
}

/// The address as stored: JSON text, or NULL when there is none.
fn address_text(input: &PersonInput) -> Option<String> {
    input
        .address
        .as_ref()
        .filter(|a| !a.is_empty())
        .and_then(|a| serde_json::to_string(a).ok())
}

pub(super) enum Write<'a> {
    Insert { status: &'a str },
    Update { expected_updated_at: i64 },
}

/// Writes the person row and replaces kinds, identifiers and affiliations.
/// `affiliation_orgs` holds the resolved org id for each affiliation, in order.
pub(super) async fn write(
    tx: &mut Tx,
    id: &str,
    input: &PersonInput,
    affiliation_orgs: &[String],
    now: Timestamp,
    mode: Write<'_>,
) -> Result<(), DirectoryError> {
    match mode {
        Write::Insert { status } => {
            sqlx::query(
                "INSERT INTO people (id, sourced_id, status, given_name, family_name, middle_name, preferred_name, email, username, \
                 status_changed_at, status_reason, created_at, updated_at, phone_number, phone_number_verified, address) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL, $10, $10, $11, $12, $13)",
            )
            .bind(id)
            .bind(&input.sourced_id)
            .bind(status)
            .bind(&input.given_name)
            .bind(&input.family_name)
            .bind(&input.middle_name)
            .bind(&input.preferred_name)
            .bind(&input.email)
            .bind(&input.username)
            .bind(now)
            .bind(&input.phone_number)
            .bind(i64::from(input.phone_number_verified))
            .bind(address_text(input))
            .execute(&mut **tx)
            .await?;
        }
        Write::Update {
            expected_updated_at,
        } => {
            // Optimistic concurrency: the row must be as it was read, or another
            // request changed it in between and this one must not overwrite it.
            let done = sqlx::query(
                "UPDATE people SET sourced_id = $1, given_name = $2, family_name = $3, middle_name = $4, preferred_name = $5, \
                 email = $6, username = $7, updated_at = $8, phone_number = $11, phone_number_verified = $12, address = $13 \
                 WHERE id = $9 AND updated_at = $10",
            )
            .bind(&input.sourced_id)
            .bind(&input.given_name)
            .bind(&input.family_name)
            .bind(&input.middle_name)
            .bind(&input.preferred_name)
            .bind(&input.email)
            .bind(&input.username)
            .bind(now.as_millis().max(expected_updated_at + 1))
            .bind(id)
            .bind(expected_updated_at)
            .bind(&input.phone_number)
            .bind(i64::from(input.phone_number_verified))
            .bind(address_text(input))
            .execute(&mut **tx)
            .await?;
            if done.rows_affected() != 1 {
                return Err(DirectoryError::Conflict(
                    "the record changed while this request ran; read it again and retry".into(),
                ));
            }
            for table in ["person_kinds", "person_identifiers", "affiliations"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE person_id = $1"))
                    .bind(id)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    for kind in &input.kinds {
        sqlx::query("INSERT INTO person_kinds (person_id, kind) VALUES ($1, $2)")
            .bind(id)
            .bind(kind)
            .execute(&mut **tx)
            .await?;
    }
    for (t, v) in &input.identifiers {
        sqlx::query(
            "INSERT INTO person_identifiers (person_id, id_type, value) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(t)
        .bind(v)
        .execute(&mut **tx)
        .await?;
    }
    for (a, org_id) in input.affiliations.iter().zip(affiliation_orgs) {
        sqlx::query(
            "INSERT INTO affiliations (id, person_id, org_id, role, is_primary, begin_date, end_date) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(store::new_id())
        .bind(id)
        .bind(org_id)
        .bind(&a.role)
        .bind(i64::from(a.primary))
        .bind(&a.begin_date)
        .bind(&a.end_date)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

pub(super) async fn set_status(
    tx: &mut Tx,
    id: &str,
    from: &str,
    status: &str,
    reason: Option<&str>,
    now: Timestamp,
) -> Result<(), DirectoryError> {
    // Conditional on the status read before: two replicas moving one person at once
    // cannot both win.
    // `updated_at` only moves forward, even for two changes within a millisecond.
    let done = sqlx::query("UPDATE people SET status = $1, status_reason = $2, status_changed_at = $3, \
         updated_at = CASE WHEN updated_at >= $3 THEN updated_at + 1 ELSE $3 END WHERE id = $4 AND status = $5")
        .bind(status)
        .bind(reason)
        .bind(now)
        .bind(id)
        .bind(from)
        .execute(&mut **tx)
        .await?;
    if done.rows_affected() != 1 {
        return Err(DirectoryError::Conflict(
            "the status changed while this request ran; read the record again".into(),
        ));
    }
    Ok(())
}

/// Whether someone else holds one of these identifiers or this username (a 409).
pub(super) async fn find_clash(
    tx: &mut Tx,
    id: &str,
    input: &PersonInput,
) -> Result<Option<String>, DirectoryError> {
    if let Some(u) = &input.username {
        let row = sqlx::query("SELECT sourced_id FROM people WHERE username = $1 AND id <> $2")
            .bind(u)
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        // Not naming the holder: the caller may not be allowed to see them.
        if row.is_some() {
            return Ok(Some(format!(
                "username {u:?} already belongs to another person"
            )));
        }
    }
    for (t, v) in &input.identifiers {
        let row = sqlx::query(
            "SELECT p.sourced_id FROM person_identifiers i JOIN people p ON p.id = i.person_id WHERE i.id_type = $1 AND i.value = $2 AND i.person_id <> $3",
        )
        .bind(t)
        .bind(v)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        if row.is_some() {
            return Ok(Some(format!(
                "identifier {t} {v:?} already belongs to another person"
            )));
        }
    }
    Ok(None)
}
