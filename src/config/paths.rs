//! Relative file names in a configuration file are relative to that file's directory,
//! wherever the hub is started from (a service manager's working directory is rarely
//! the one the file sits in). Only the file's own values are resolved, before the
//! environment is laid over them: a relative path given in an `HMS_ACH__…` variable or
//! on the command line stays relative to the working directory, as shells expect.

use std::path::Path;

/// Every key that names a file, as its path through the tree; `[]` stands for each
/// table of an array of tables. A test below fails when a config struct gains a
/// path-typed field that is missing here.
pub(super) const FILE_KEYS: &[&[&str]] = &[
    &["federation", "sp_key_file"],
    &["federation", "sp_cert_file"],
    &["federation", "saml_idps", "[]", "metadata_file"],
    &["federation", "oidc_idps", "[]", "client_secret_file"],
    &["saml_apps", "service_providers", "[]", "metadata_file"],
    &["mail", "eml_dir"],
];

/// Resolves the file keys and a relative SQLite database (`database.url`) against
/// `dir`, the configuration file's directory.
pub(super) fn resolve_file_paths(tree: &mut toml::Table, dir: &Path) {
    for key in FILE_KEYS {
        resolve(tree, key, dir);
    }
    if let Some(toml::Value::String(url)) = tree
        .get_mut("database")
        .and_then(|d| d.as_table_mut())
        .and_then(|d| d.get_mut("url"))
    {
        if let Some(resolved) = resolve_sqlite_url(url, dir) {
            *url = resolved;
        }
    }
}

fn resolve(table: &mut toml::Table, key: &[&str], dir: &Path) {
    let Some((first, rest)) = key.split_first() else {
        return;
    };
    let Some(value) = table.get_mut(*first) else {
        return;
    };
    match (value, rest) {
        (toml::Value::String(p), []) if !p.is_empty() && Path::new(p.as_str()).is_relative() => {
            let joined = dir.join(p.as_str()).display().to_string();
            *p = joined;
        }
        (toml::Value::Table(t), rest) => resolve(t, rest, dir),
        (toml::Value::Array(items), [each, rest @ ..]) if *each == "[]" => {
            for item in items {
                if let toml::Value::Table(t) = item {
                    resolve(t, rest, dir);
                }
            }
        }
        // A wrong type is reported by deserialization, with the line.
        _ => {}
    }
}

/// `sqlite://data/hub.db` (or `sqlite:data/hub.db`) written in the file in `dir` →
/// `sqlite:///…/dir/data/hub.db`; absolute paths, in-memory databases and other
/// schemes are left as they are. Query parameters (`?mode=…`) are kept.
fn resolve_sqlite_url(url: &str, dir: &Path) -> Option<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (file, query) = match rest.split_once('?') {
        Some((f, q)) => (f, Some(q)),
        None => (rest, None),
    };
    if file.is_empty() || file.starts_with(':') || Path::new(file).is_absolute() {
        return None;
    }
    let mut out = format!("sqlite://{}", dir.join(file).display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_resolve_against_the_directory() {
        let dir = Path::new("/etc/hms-ach");
        let r = |u: &str| resolve_sqlite_url(u, dir);
        assert_eq!(
            r("sqlite://hub.db").as_deref(),
            Some("sqlite:///etc/hms-ach/hub.db")
        );
        assert_eq!(
            r("sqlite:data/hub.db?mode=rwc").as_deref(),
            Some("sqlite:///etc/hms-ach/data/hub.db?mode=rwc")
        );
        assert_eq!(r("sqlite:///var/lib/hub.db"), None);
        assert_eq!(r("sqlite::memory:"), None);
        assert_eq!(r("postgres://db/hub"), None);
    }

    /// The file's relative paths resolve against its directory; a relative path
    /// given in the environment stays relative to the working directory.
    #[test]
    fn the_files_paths_resolve_against_it_and_the_environments_do_not() {
        let dir = std::env::temp_dir().join(format!("hms-paths-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("secrets")).unwrap();
        std::fs::write(dir.join("secrets/okta"), "s3cret\n").unwrap();
        let file = dir.join("hms-ach.toml");
        std::fs::write(
            &file,
            "[database]\nurl = \"sqlite://data/hub.db\"\n[federation]\nsp_key_file = \"k.pem\"\nsp_cert_file = \"/abs/c.pem\"\n\
             [[federation.saml_idps]]\nid = \"a\"\ndisplay_name = \"A\"\nmetadata_file = \"idp/a.xml\"\n\
             [[federation.oidc_idps]]\nid = \"o\"\ndisplay_name = \"O\"\nissuer = \"https://o.example\"\nclient_id = \"c\"\nclient_secret_file = \"secrets/okta\"\n\
             [[saml_apps.service_providers]]\nid = \"lib\"\ndisplay_name = \"L\"\nentity_id = \"https://l.example\"\nmetadata_file = \"sp/lib.xml\"\n",
        )
        .unwrap();
        let env = vec![(
            "HMS_ACH__FEDERATION__SP_CERT_FILE".to_string(),
            "here/c.pem".to_string(),
        )];
        let c = crate::config::Config::load_from(
            Some(&file),
            &env,
            &crate::config::Overrides::default(),
        )
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let f = &c.federation;
        assert_eq!(
            c.database.url,
            format!("sqlite://{}", dir.join("data/hub.db").display())
        );
        assert_eq!(f.sp_key_file.as_deref(), Some(dir.join("k.pem").as_path()));
        assert_eq!(f.sp_cert_file.as_deref(), Some(Path::new("here/c.pem")));
        assert_eq!(
            f.saml_idps[0].metadata_file.as_deref(),
            Some(dir.join("idp/a.xml").as_path())
        );
        assert_eq!(
            f.oidc_idps[0].client_secret_file.as_deref(),
            Some(dir.join("secrets/okta").as_path())
        );
        assert_eq!(
            c.saml_apps.service_providers[0].metadata_file.as_deref(),
            Some(dir.join("sp/lib.xml").as_path())
        );
    }

    /// Every `Option<PathBuf>` field of the configuration structs is listed in
    /// `FILE_KEYS`: a new path-typed key cannot be forgotten here.
    #[test]
    fn every_path_typed_config_field_is_resolved() {
        let sources = [
            include_str!("mod.rs"),
            include_str!("federation.rs"),
            include_str!("federation_oidc.rs"),
            include_str!("saml_apps.rs"),
            include_str!("server.rs"),
            include_str!("mfa.rs"),
            include_str!("mail.rs"),
            include_str!("district.rs"),
        ];
        let mut fields = Vec::new();
        for text in sources {
            for line in text.lines() {
                let line = line.trim();
                if let Some(rest) = line.strip_prefix("pub ") {
                    if let Some((name, ty)) = rest.split_once(':') {
                        let field = name
                            .trim()
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                        if field && ty.contains("PathBuf") {
                            fields.push(name.trim().to_string());
                        }
                    }
                }
            }
        }
        assert!(
            fields.len() >= 5,
            "the scan found the known path fields: {fields:?}"
        );
        for f in &fields {
            assert!(
                FILE_KEYS.iter().any(|k| k.last() == Some(&f.as_str())),
                "config field {f} is a path but is not in FILE_KEYS"
            );
        }
    }
}
