//! RFC 7396 JSON merge patch over a record's input form, so that PATCH and POST
//! share one validation path.

use serde::{de::DeserializeOwned, Serialize};

use super::DirectoryError;

use crate::api::apply_merge_patch as apply;

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
    // The field by its path ("givenName", "affiliations[0].role"), never by the value.
    crate::api::from_json_value(doc).map_err(|e| DirectoryError::Invalid(vec![e]))
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
