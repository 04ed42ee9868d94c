//! Demo people: every kind, with identifiers and affiliations, generated from a
//! few name lists so the data stays the same on every run.

use std::collections::BTreeMap;

use crate::directory::{AffiliationInput, PersonInput};

const GIVEN: &[&str] = &[
    "Ana", "Ben", "Chloe", "Dev", "Elena", "Farah", "Gabriel", "Hana", "Isaac", "Jada", "Kenji",
    "Lucia", "Malik", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tessa", "Uma", "Victor",
    "Wen", "Ximena", "Yusuf", "Zoe",
];
const FAMILY: &[&str] = &[
    "Alvarez", "Brooks", "Chen", "Diallo", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
    "Johnson", "Kowalski", "Lopez", "Mensah", "Nguyen", "Okafor", "Patel", "Quintero", "Rossi",
    "Singh", "Tanaka", "Usman", "Vargas", "Williams", "Xu", "Yilmaz", "Zhang",
];

fn aff(org: &str, role: &str, primary: bool) -> AffiliationInput {
    AffiliationInput {
        org: org.into(),
        role: role.into(),
        primary,
        begin_date: Some("2026-08-15".into()),
        end_date: None,
    }
}

/// A valid NPI: nine digits and their check digit.
fn npi(base: u32) -> String {
    let nine = format!("{:09}", 123_450_000 + base);
    let check = crate::directory::npi_check_digit(&nine).unwrap_or(0);
    format!("{nine}{check}")
}

fn person(
    n: usize,
    sourced: String,
    kind: &str,
    ids: &[(&str, String)],
    affiliations: Vec<AffiliationInput>,
) -> PersonInput {
    let given = GIVEN[n % GIVEN.len()];
    let family = FAMILY[(n * 7 + 3) % FAMILY.len()];
    let username = format!("{}.{}{}", given.to_lowercase(), family.to_lowercase(), n);
    PersonInput {
        sourced_id: sourced,
        kinds: vec![kind.into()],
        given_name: given.into(),
        family_name: family.into(),
        middle_name: None,
        preferred_name: None,
        email: Some(format!("{username}@riverside.k12.example")),
        username: Some(username),
        phone_number: None,
        phone_number_verified: false,
        address: None,
        status: None,
        identifiers: ids
            .iter()
            .map(|(t, v)| (t.to_string(), v.clone()))
            .collect::<BTreeMap<_, _>>(),
        affiliations,
    }
}

pub fn demo_people() -> Vec<PersonInput> {
    let mut out = Vec::new();
    let mut n = 0;
    let schools = ["rhs", "lms", "oge"];
    for i in 0..18 {
        let school = schools[i % 3];
        out.push(person(
            n,
            format!("stu-{:04}", i + 1),
            "student",
            &[
                ("sis", format!("S{:06}", 100_000 + i)),
                ("state", format!("CA{:08}", 40_000_000 + i)),
            ],
            vec![aff(school, "student", true)],
        ));
        n += 1;
    }
    for i in 0..6 {
        out.push(person(
            n,
            format!("nurse-stu-{:03}", i + 1),
            "student",
            &[("sis", format!("N{:06}", 200_000 + i))],
            vec![
                aff("rnah-nursing", "student", true),
                aff("rgh", "clinical rotation", false),
            ],
        ));
        n += 1;
    }
    let depts = ["rhs-science", "rhs-math", "lms", "oge"];
    for i in 0..8 {
        let org = depts[i % depts.len()];
        let mut a = vec![aff(org, "teacher", true)];
        if i == 0 {
            a.push(aff("rhs-science", "Department Chair", false));
        }
        out.push(person(
            n,
            format!("tch-{:03}", i + 1),
            "teacher",
            &[("employee", format!("E{:05}", 10_000 + i))],
            a,
        ));
        n += 1;
    }
    for i in 0..4 {
        out.push(person(
            n,
            format!("ci-{:03}", i + 1),
            "clinical_instructor",
            &[
                ("employee", format!("E{:05}", 20_000 + i)),
                ("npi", npi(i as u32)),
            ],
            vec![
                aff("rnah-nursing", "clinical instructor", true),
                aff("rgh", "preceptor", false),
            ],
        ));
        n += 1;
    }
    let staff = [
        ("rusd", "registrar"),
        ("rusd", "compliance officer"),
        ("rhs", "front office"),
        ("rnah", "program coordinator"),
    ];
    for (i, (org, role)) in staff.iter().enumerate() {
        out.push(person(
            n,
            format!("stf-{:03}", i + 1),
            "staff",
            &[("employee", format!("E{:05}", 30_000 + i))],
            vec![aff(org, role, true)],
        ));
        n += 1;
    }
    let admins = [
        ("rusd", "superintendent"),
        ("rhs", "principal"),
        ("rnah", "program director"),
    ];
    for (i, (org, role)) in admins.iter().enumerate() {
        out.push(person(
            n,
            format!("adm-{:03}", i + 1),
            "administrator",
            &[("employee", format!("E{:05}", 40_000 + i))],
            vec![aff(org, role, true)],
        ));
        n += 1;
    }
    for i in 0..5 {
        out.push(person(
            n,
            format!("grd-{:03}", i + 1),
            "guardian",
            &[],
            vec![aff(schools[i % 3], "guardian", true)],
        ));
        n += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn demo_npis_have_valid_check_digits() {
        for i in 0..4 {
            let mut p = super::person(0, "x".into(), "staff", &[("npi", super::npi(i))], vec![]);
            assert!(
                crate::directory::validate_person(&mut p).is_empty(),
                "{:?}",
                super::npi(i)
            );
        }
    }
}
