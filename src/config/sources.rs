//! Reading the layers: where a TOML error is (without echoing the line, which may
//! hold a secret) and how an `HMS_ACH__SECTION__KEY` variable lands in the tree.

use super::{ConfigError, ENV_PREFIX};

/// "line L, column C: message", without quoting the line itself: a mistyped key
/// next to a secret (`master-key = "…"`) must not print the secret.
pub(super) fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// `HMS_ACH__SERVER__BIND=…` → `tree.server.bind = "…"`. Values that read as TOML
/// literals (numbers, booleans) keep their type so that numeric settings work.
pub(super) fn overlay_env(tree: &mut toml::Table, var: &str, raw: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(|s| s.to_ascii_lowercase())
        .collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(ConfigError::Env {
            var: var.into(),
            message: "write it as HMS_ACH__SECTION__KEY".into(),
        });
    }
    let value = match toml::from_str::<toml::Table>(&format!("v = {raw}")) {
        Ok(mut t) => match t.remove("v") {
            Some(
                v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_)),
            ) => v,
            _ => toml::Value::String(raw.into()),
        },
        Err(_) => toml::Value::String(raw.into()),
    };
    let (last, parents) = path.split_last().ok_or_else(|| ConfigError::Env {
        var: var.into(),
        message: "empty key".into(),
    })?;
    let mut node = tree;
    for p in parents {
        let entry = node
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => {
                return Err(ConfigError::Env {
                    var: var.into(),
                    message: format!("{p} is not a section"),
                })
            }
        };
    }
    node.insert(last.clone(), value);
    Ok(())
}
