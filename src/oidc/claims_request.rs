//! The `claims` request parameter (OIDC Core §5.5): individual claims an app asks
//! for, in the ID token and/or at UserInfo, essential or voluntary.
//!
//! What is released (the hub's rule): a claim belongs to one scope (`name` to
//! `profile`, `phone_number` to `phone`…, [`claim_scope`]). A claim asked for by
//! name is released where it was asked for when the client is registered for its
//! scope and the person's consent covers that scope: the scope is added to what the
//! consent page asks (first-party apps skip consent as for scopes). Only the claims
//! named are released that way, not the rest of their scope. Claims of scopes the
//! client is not registered for, and claims the hub does not know, are left out;
//! an essential claim that cannot be released is not an error (§5.5.1: the person
//! may withhold it). `sub` with a `value` asks for that person (like
//! `id_token_hint`); `acr` with `values` asks for those levels (like `acr_values`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One claim's request: `null` (voluntary, nothing more) or this object (§5.5.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

/// The parsed parameter; other members than `userinfo` and `id_token` are ignored
/// (§5.5: extensions).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub userinfo: BTreeMap<String, Option<ClaimSpec>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub id_token: BTreeMap<String, Option<ClaimSpec>>,
}

/// The scope each releasable claim belongs to (OIDC Core §5.4, and the hub's own).
pub fn claim_scope(claim: &str) -> Option<&'static str> {
    Some(match claim {
        "name" | "given_name" | "family_name" | "middle_name" | "nickname"
        | "preferred_username" | "updated_at" => "profile",
        "email" | "email_verified" => "email",
        "phone_number" | "phone_number_verified" => "phone",
        "address" => "address",
        "roles" | "kinds" | "orgs" => "roles",
        "district_identifiers" => "identifiers",
        _ => return None,
    })
}

const MAX_LEN: usize = 4096;
const MAX_CLAIMS: usize = 64;

/// Parses and checks the parameter's JSON; the error says what is wrong.
pub fn parse_claims(raw: &str) -> Result<ClaimsRequest, String> {
    if raw.len() > MAX_LEN {
        return Err(format!("claims is longer than {MAX_LEN} bytes"));
    }
    let doc: Value = serde_json::from_str(raw)
        .map_err(|_| "claims must be a JSON object (OIDC Core 5.5)".to_string())?;
    let Value::Object(top) = doc else {
        return Err("claims must be a JSON object (OIDC Core 5.5)".into());
    };
    let mut out = ClaimsRequest::default();
    for (member, target) in [
        ("userinfo", &mut out.userinfo),
        ("id_token", &mut out.id_token),
    ] {
        let Some(v) = top.get(member) else { continue };
        let Value::Object(claims) = v else {
            return Err(format!("claims.{member} must be a JSON object"));
        };
        if claims.len() > MAX_CLAIMS {
            return Err(format!(
                "claims.{member} names more than {MAX_CLAIMS} claims"
            ));
        }
        for (name, spec) in claims {
            if name.is_empty() || name.chars().any(char::is_control) {
                return Err(format!(
                    "claims.{member} has an empty or unreadable claim name"
                ));
            }
            let spec = match spec {
                Value::Null => None,
                Value::Object(o) => {
                    let essential = match o.get("essential") {
                        None | Some(Value::Null) => None,
                        Some(Value::Bool(b)) => Some(*b),
                        Some(_) => {
                            return Err(format!(
                                "claims.{member}.{name}.essential must be true or false"
                            ))
                        }
                    };
                    let values = match o.get("values") {
                        None | Some(Value::Null) => None,
                        Some(Value::Array(a)) => Some(a.clone()),
                        Some(_) => {
                            return Err(format!("claims.{member}.{name}.values must be an array"))
                        }
                    };
                    Some(ClaimSpec {
                        essential,
                        value: o.get("value").filter(|v| !v.is_null()).cloned(),
                        values,
                    })
                }
                _ => {
                    return Err(format!(
                        "claims.{member}.{name} must be null or an object (OIDC Core 5.5.1)"
                    ))
                }
            };
            target.insert(name.clone(), spec);
        }
    }
    Ok(out)
}

impl ClaimsRequest {
    /// The scopes of every claim asked for, anywhere (each once).
    pub fn scopes(&self) -> Vec<&'static str> {
        let mut v: Vec<&'static str> = self
            .userinfo
            .keys()
            .chain(self.id_token.keys())
            .filter_map(|c| claim_scope(c))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The subject asked for with `sub: {"value": …}` in either place; an error
    /// when the two places ask for different people.
    pub fn sub_value(&self) -> Result<Option<String>, String> {
        let of = |m: &BTreeMap<String, Option<ClaimSpec>>| {
            m.get("sub")
                .and_then(|s| s.as_ref())
                .and_then(|s| s.value.as_ref())
                .map(|v| v.as_str().map(str::to_string).ok_or(()))
        };
        match (of(&self.id_token), of(&self.userinfo)) {
            (Some(Err(())), _) | (_, Some(Err(()))) => {
                Err("claims.sub.value must be a string".into())
            }
            (Some(Ok(a)), Some(Ok(b))) if a != b => {
                Err("claims asks for two different subjects".into())
            }
            (Some(Ok(a)), _) | (None, Some(Ok(a))) => Ok(Some(a)),
            (None, None) => Ok(None),
        }
    }

    /// `acr` levels asked for in the ID token (`value` or `values`), as `acr_values`
    /// would say them.
    pub fn acr_values(&self) -> Option<String> {
        let spec = self.id_token.get("acr")?.as_ref()?;
        let mut list: Vec<&str> = Vec::new();
        if let Some(v) = spec.value.as_ref().and_then(|v| v.as_str()) {
            list.push(v);
        }
        for v in spec.values.iter().flatten() {
            if let Some(s) = v.as_str() {
                list.push(s);
            }
        }
        (!list.is_empty()).then(|| list.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_core_example_and_refuses_malformed_requests() {
        // OIDC Core §5.5's example, shortened.
        let c = parse_claims(
            r#"{"userinfo":{"given_name":{"essential":true},"nickname":null,"email":{"essential":true},"http://example.info/claims/groups":null},
                "id_token":{"auth_time":{"essential":true},"acr":{"values":["urn:mace:incommon:iap:silver"]}}}"#,
        )
        .unwrap();
        assert_eq!(c.userinfo.len(), 4);
        assert_eq!(
            c.userinfo["given_name"].as_ref().unwrap().essential,
            Some(true)
        );
        assert_eq!(c.scopes(), vec!["email", "profile"]);
        assert_eq!(
            c.acr_values().as_deref(),
            Some("urn:mace:incommon:iap:silver")
        );
        for bad in [
            "not json",
            "[]",
            r#"{"userinfo":[]}"#,
            r#"{"id_token":{"email":true}}"#,
            r#"{"id_token":{"email":{"essential":"yes"}}}"#,
            r#"{"id_token":{"acr":{"values":"x"}}}"#,
        ] {
            assert!(parse_claims(bad).is_err(), "{bad}");
        }
        let two =
            parse_claims(r#"{"id_token":{"sub":{"value":"a"}},"userinfo":{"sub":{"value":"b"}}}"#)
                .unwrap();
        assert!(two.sub_value().is_err());
        let one = parse_claims(r#"{"id_token":{"sub":{"value":"a"}}}"#).unwrap();
        assert_eq!(one.sub_value().unwrap().as_deref(), Some("a"));
    }
}
