//! RFC 7396 JSON merge patch.

/// Applies `patch` to `target` (RFC 7396 §2): objects merge, `null` removes a
/// member, anything else replaces.
pub fn apply_merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
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
                        apply_merge_patch(t.entry(k).or_insert(serde_json::Value::Null), v);
                    }
                }
            }
        }
        other => *target = other,
    }
}
