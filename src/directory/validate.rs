//! Input checks that need no database. Each failure names the field and says what
//! would be accepted.

use super::model::{
    allowed_parents, OrgInput, PersonInput, IDENTIFIER_TYPES, ORG_KINDS, ORG_STATUSES, PERSON_KINDS,
};
use crate::clock::parse_date;
use crate::error::FieldError;

fn check_sourced_id(errors: &mut Vec<FieldError>, v: &str) {
    if v.is_empty()
        || v.len() > 128
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    {
        errors.push(FieldError::new(
            "sourcedId",
            "must be 1 to 128 characters of letters, digits and . _ : -",
        ));
    }
}

/// A name of a person, org or role: prepared as RFC 8266 nicknames are (spaces,
/// NFKC), then refused when it holds controls, bidi formatting or invisible
/// characters, which would let one name pass for another.
fn check_name(
    errors: &mut Vec<FieldError>,
    field: &str,
    v: &mut String,
    required: bool,
    max: usize,
) {
    *v = crate::input::prepare_name(v);
    let n = v.chars().count();
    if let Some(refused) = crate::input::refused_in_name(v) {
        errors.push(FieldError::new(field, refused.reason()));
    } else if (required && n == 0) || n > max {
        errors.push(FieldError::new(
            field,
            if required {
                format!("must be 1 to {max} characters")
            } else {
                format!("must be at most {max} characters")
            },
        ));
    }
}

/// A deliberately plain check (RFC 5321 sizes, one `@`, a dotted domain); the
/// address is proven by mail, not by a regular expression.
pub fn normalize_email(v: &str) -> Option<String> {
    let v = v.trim();
    let (local, domain) = v.rsplit_once('@')?;
    let ok = !local.is_empty()
        && local.len() <= 64
        && v.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !v.chars().any(|c| c.is_whitespace() || c.is_control())
        && crate::input::refused_as_lookalike(v).is_none()
        && !local.contains('@')
        && domain
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '.');
    ok.then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// The NPI check digit for nine digits: Luhn over "80840" + the digits (the CMS
/// NPI standard's prefix for the health-industry card issuer).
pub fn npi_check_digit(nine: &str) -> Option<u32> {
    if nine.len() != 9 || !nine.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = format!("80840{nine}")
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            // Doubling starts at the rightmost digit, which the check digit will follow.
            let x = if i % 2 == 0 { d * 2 } else { d };
            if x > 9 {
                x - 9
            } else {
                x
            }
        })
        .sum();
    Some((10 - sum % 10) % 10)
}

fn npi_is_valid(v: &str) -> bool {
    v.len() == 10
        && v.is_char_boundary(9)
        && npi_check_digit(&v[..9]).is_some_and(|c| v[9..] == c.to_string())
}

/// An E.164 number (`+`, then 7 to 15 digits, the first not 0), the form OIDC
/// Core §5.1 recommends for `phone_number`, with an optional RFC 3966 extension
/// (`;ext=123`). Spaces, dots, dashes and parentheses are removed first.
pub fn normalize_phone(v: &str) -> Option<String> {
    let (number, ext) = match v.trim().split_once(";ext=") {
        Some((n, e)) => (n, Some(e)),
        None => (v.trim(), None),
    };
    let compact: String = number
        .chars()
        .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    let ok = (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
        && ext.is_none_or(|e| (1..=10).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| match ext {
        Some(e) => format!("{compact};ext={e}"),
        None => compact,
    })
}

fn check_contact(errors: &mut Vec<FieldError>, input: &mut PersonInput) {
    if let Some(p) = &input.phone_number {
        match normalize_phone(p) {
            Some(n) => input.phone_number = Some(n),
            None => errors.push(FieldError::new(
                "phoneNumber",
                "must be an international number like +13125550123 (E.164)",
            )),
        }
    }
    if input.phone_number.is_none() && input.phone_number_verified {
        errors.push(FieldError::new(
            "phoneNumberVerified",
            "only with a phoneNumber",
        ));
    }
    if let Some(a) = &mut input.address {
        for (field, v, max) in [
            ("address.streetAddress", &mut a.street_address, 200),
            ("address.locality", &mut a.locality, 100),
            ("address.region", &mut a.region, 100),
            ("address.postalCode", &mut a.postal_code, 20),
            ("address.country", &mut a.country, 100),
        ] {
            if let Some(s) = v {
                check_name(errors, field, s, false, max);
                if s.is_empty() {
                    *v = None;
                }
            }
        }
        if a.is_empty() {
            input.address = None;
        }
    }
}

/// Checks and normalizes a person (trims names, lowercases username and email
/// domain, de-duplicates kinds).
pub fn check_person(input: &mut PersonInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_sourced_id(&mut errors, &input.sourced_id);
    check_name(&mut errors, "givenName", &mut input.given_name, true, 100);
    check_name(&mut errors, "familyName", &mut input.family_name, true, 100);
    for (field, v) in [
        ("middleName", &mut input.middle_name),
        ("preferredName", &mut input.preferred_name),
    ] {
        if let Some(s) = v {
            check_name(&mut errors, field, s, false, 100);
            if s.is_empty() {
                *v = None;
            }
        }
    }
    if input.kinds.is_empty() {
        errors.push(FieldError::new(
            "kinds",
            format!("give at least one of: {}", PERSON_KINDS.join(", ")),
        ));
    }
    for k in &input.kinds {
        if !PERSON_KINDS.contains(&k.as_str()) {
            errors.push(FieldError::new(
                "kinds",
                format!(
                    "{k:?} is not a kind; use one of: {}",
                    PERSON_KINDS.join(", ")
                ),
            ));
        }
    }
    input.kinds.sort();
    input.kinds.dedup();
    if let Some(e) = &input.email {
        match normalize_email(e) {
            Some(n) => input.email = Some(n),
            None => errors.push(FieldError::new(
                "email",
                match crate::input::refused_as_lookalike(e) {
                    Some(r) => r.reason(),
                    None => "must be an address like name@district.example".to_string(),
                },
            )),
        }
    }
    if let Some(u) = &input.username {
        let u = crate::input::prepare_username(u);
        if let Some(refused) = crate::input::refused_in_name(&u) {
            errors.push(FieldError::new("username", refused.reason()));
        } else if u.len() < 2
            || u.len() > 64
            || !u
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b))
        {
            errors.push(FieldError::new(
                "username",
                "must be 2 to 64 characters of letters, digits and . _ - @",
            ));
        }
        input.username = Some(u);
    }
    check_contact(&mut errors, input);
    if let Some(s) = &input.status {
        if super::PersonStatus::parse(s).is_none() {
            errors.push(FieldError::new(
                "status",
                "must be active, pending, suspended, graduated or separated",
            ));
        }
    }
    for (t, v) in &input.identifiers {
        let field = format!("identifiers.{t}");
        if !IDENTIFIER_TYPES.contains(&t.as_str()) {
            errors.push(FieldError::new(
                field,
                format!(
                    "unknown identifier type; use one of: {}",
                    IDENTIFIER_TYPES.join(", ")
                ),
            ));
        } else if t == "npi" && !npi_is_valid(v) {
            errors.push(FieldError::new(
                field,
                "must be a 10-digit NPI with a valid check digit",
            ));
        } else if v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            errors.push(FieldError::new(
                field,
                "must be 1 to 64 letters, digits, - _ or .",
            ));
        }
    }
    let mut primaries = 0;
    for (i, a) in input.affiliations.iter_mut().enumerate() {
        let f = |name: &str| format!("affiliations[{i}].{name}");
        check_name(&mut errors, &f("role"), &mut a.role, true, 64);
        primaries += usize::from(a.primary);
        let begin = a.begin_date.as_deref().map(|d| (d, parse_date(d)));
        let end = a.end_date.as_deref().map(|d| (d, parse_date(d)));
        for (name, d) in [("beginDate", begin), ("endDate", end)] {
            if let Some((_, None)) = d {
                errors.push(FieldError::new(f(name), "must be a date like 2026-09-01"));
            }
        }
        if let (Some((_, Some(b))), Some((_, Some(e)))) = (begin, end) {
            if e < b {
                errors.push(FieldError::new(
                    f("endDate"),
                    "must not be before beginDate",
                ));
            }
        }
    }
    if primaries > 1 {
        errors.push(FieldError::new(
            "affiliations",
            "at most one affiliation may be primary",
        ));
    }
    errors
}

pub fn check_org(input: &mut OrgInput) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_sourced_id(&mut errors, &input.sourced_id);
    check_name(&mut errors, "name", &mut input.name, true, 200);
    if !ORG_KINDS.contains(&input.kind.as_str()) {
        errors.push(FieldError::new(
            "kind",
            format!("use one of: {}", ORG_KINDS.join(", ")),
        ));
    } else if input.kind == "district" && input.parent.is_some() {
        errors.push(FieldError::new(
            "parent",
            "a district is the top of the tree and has no parent",
        ));
    } else if input.kind != "district" && input.parent.is_none() {
        errors.push(FieldError::new(
            "parent",
            format!(
                "a {} needs a parent: one of {}",
                input.kind,
                allowed_parents(&input.kind).join(", ")
            ),
        ));
    }
    if let Some(s) = &input.status {
        if !ORG_STATUSES.contains(&s.as_str()) {
            errors.push(FieldError::new("status", "must be active or inactive"));
        }
    }
    if let Some(i) = &input.identifier {
        if i.is_empty() || i.len() > 64 || crate::input::find_control(i, false).is_some() {
            errors.push(FieldError::new(
                "identifier",
                "must be 1 to 64 characters without control characters (e.g. a state or NCES school id)",
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_domain_lowercased() {
        assert_eq!(
            normalize_email("Ana.Ruiz@District.Example").as_deref(),
            Some("Ana.Ruiz@district.example")
        );
        for bad in [
            "ana",
            "ana@",
            "@x.org",
            "ana@localhost",
            "a b@x.org",
            "ana@x..org.",
        ] {
            assert!(normalize_email(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn npi_check_digit() {
        assert!(npi_is_valid("1234567893"));
        assert!(!npi_is_valid("1234567890"));
        assert!(!npi_is_valid("12345"));
    }
}
