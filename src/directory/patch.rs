//! RFC 7396 JSON merge patch over a record's input form, so that PATCH and POST
//! share one validation path.

use serde::{de::DeserializeOwned, Serialize};

use super::DirectoryError;

fn apply(target: &mut serde_json::Value, patch: serde_json::Value) {
    match patch {
        serde_json::Value::Object(map) => {
            if !target.is_object() {
                *target = serde_json::Value::Object(Default::default());
            }
            if let serde_json::Value::Object(t) = target {
                for (k, v) in map {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        apply(t.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}

pub(super) fn merge_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: serde_json::Value,
) -> Result<T, DirectoryError> {
    if !patch.is_object() {
        return Err(DirectoryError::field(
            "body",
            "a merge patch (RFC 7396) is a JSON object of the fields to change",
        ));
    }
    let mut doc =
        serde_json::to_value(current).map_err(|e| DirectoryError::field("body", e.to_string()))?;
    apply(&mut doc, patch);
    serde_json::from_value(doc).map_err(|e| {
        let msg = e.to_string();
        let field = msg.split('`').nth(1).unwrap_or("body").to_string();
        DirectoryError::field(field, msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc7396_examples() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        apply(&mut t, json!({"a": "z", "c": {"f": null}}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}}));
        let mut t = json!({"a": ["b"]});
        apply(&mut t, json!({"a": ["c"]}));
        assert_eq!(t, json!({"a": ["c"]}));
    }
}
