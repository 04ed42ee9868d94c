//! Administering the real binary (issue 14, defect 7): `check-config` finds what
//! `serve` would refuse in the SAML configuration (it said "valid" before), relative
//! paths in a configuration file resolve against the file wherever the hub is started
//! from, and a clean shutdown logs no errors or warnings. Peers: none but the binary;
//! the IdP metadata is the xmlsec1-made fixture of `bench/saml/fixture`, the SP key
//! pair is made with the `openssl` command line tool.

use integration_tests::{hub_command as hub, workspace, Hub};
use std::path::Path;

/// A SAML app's metadata: `entity` with one HTTP-POST ACS at `acs`.
fn sp_metadata(entity: &str, acs: &str) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false">
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#
    )
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn idp_fixture() -> String {
    std::fs::read_to_string(workspace().join("bench/saml/fixture/idp-metadata.xml")).unwrap()
}

const SAML_CONFIG: &str = r#"
[[federation.saml_idps]]
id = "riverside"
display_name = "Riverside University"
metadata_file = "idp/riverside.xml"

[[saml_apps.service_providers]]
id = "library"
display_name = "Library catalogue"
entity_id = "https://library.example/saml/metadata"
metadata_file = "sp/library.xml"

[[saml_apps.service_providers]]
id = "payroll"
display_name = "Payroll"
entity_id = "https://payroll.example/sp"
metadata_file = "sp/payroll.xml"
"#;

#[test]
fn check_config_finds_what_serve_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("hms-ach.toml");
    write(&conf, SAML_CONFIG);
    // The IdP's metadata file is missing; the library's metadata is another app's;
    // payroll's ACS is plain http on a public host.
    write(
        &dir.path().join("sp/library.xml"),
        &sp_metadata("https://other.example/sp", "https://other.example/acs"),
    );
    write(
        &dir.path().join("sp/payroll.xml"),
        &sp_metadata("https://payroll.example/sp", "http://payroll.example/acs"),
    );
    let db = format!("sqlite://{}/hub.db", dir.path().display());
    let run = || {
        hub(dir.path())
            .args(["check-config", "--config"])
            .arg(&conf)
            .args(["--database-url", &db])
            .output()
            .unwrap()
    };
    let out = run();
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}{err}");
    assert!(!stdout.contains("configuration is valid"), "{stdout}");
    assert!(err.contains("3 problems"), "{err}");
    let line = |needle: &str| {
        err.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line about {needle}: {err}"))
            .to_string()
    };
    let idp = line("federation.saml_idps id = \"riverside\"");
    assert!(
        idp.contains("cannot read") && idp.contains("idp/riverside.xml"),
        "{idp}"
    );
    let library = line("id = \"library\"");
    assert!(
        library.contains("https://other.example/sp")
            && library.contains("https://library.example/saml/metadata")
            && library.contains("set entity_id"),
        "{library}"
    );
    let payroll = line("id = \"payroll\"");
    assert!(
        payroll.contains("http://payroll.example/acs")
            && payroll.contains("https")
            && payroll.contains("127.0.0.1"),
        "{payroll}"
    );

    // Fixed (plain http is fine on loopback): valid.
    write(&dir.path().join("idp/riverside.xml"), &idp_fixture());
    write(
        &dir.path().join("sp/library.xml"),
        &sp_metadata(
            "https://library.example/saml/metadata",
            "https://library.example/acs",
        ),
    );
    write(
        &dir.path().join("sp/payroll.xml"),
        &sp_metadata("https://payroll.example/sp", "http://127.0.0.1:9/acs"),
    );
    let out = run();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn relative_paths_in_the_config_file_resolve_against_its_directory() {
    let root = tempfile::tempdir().unwrap();
    let conf_dir = root.path().join("etc");
    let elsewhere = root.path().join("cwd");
    std::fs::create_dir_all(conf_dir.join("data")).unwrap();
    std::fs::create_dir_all(conf_dir.join("keys")).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Every path-typed key, relative: database, SP key pair, IdP and app metadata,
    // an upstream OpenID Provider's client secret.
    let config = format!(
        "[database]\nurl = \"sqlite://data/hub.db\"\n\n[federation]\nsp_key_file = \"keys/sp.key\"\nsp_cert_file = \"keys/sp.crt\"\n{SAML_CONFIG}\n[[federation.oidc_idps]]\nid = \"okta\"\ndisplay_name = \"Okta\"\nissuer = \"https://okta.example\"\nclient_id = \"c\"\nclient_secret_file = \"secrets/okta\"\n"
    );
    write(&conf_dir.join("hms-ach.toml"), &config);
    write(&conf_dir.join("idp/riverside.xml"), &idp_fixture());
    write(
        &conf_dir.join("sp/library.xml"),
        &sp_metadata(
            "https://library.example/saml/metadata",
            "https://library.example/acs",
        ),
    );
    write(
        &conf_dir.join("sp/payroll.xml"),
        &sp_metadata("https://payroll.example/sp", "https://payroll.example/acs"),
    );
    write(&conf_dir.join("secrets/okta"), "s3cret\n");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=hub",
            "-keyout",
            "keys/sp.key",
            "-out",
            "keys/sp.crt",
        ])
        .current_dir(&conf_dir)
        .output()
        .expect("the openssl command line tool makes the SP key pair");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    // Started from another directory, with the file named by its full path.
    let conf = conf_dir.join("hms-ach.toml");
    for command in ["check-config", "migrate"] {
        let out = hub(&elsewhere)
            .arg(command)
            .arg("--config")
            .arg(&conf)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        conf_dir.join("data/hub.db").exists(),
        "the database is beside the file"
    );
    assert!(
        !elsewhere.join("data").exists() && !elsewhere.join("hub.db").exists(),
        "nothing is created in the working directory"
    );

    // Named relative to the working directory, it still resolves against the file.
    let out = hub(root.path())
        .args(["check-config", "--config", "etc/hms-ach.toml"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_clean_shutdown_logs_no_errors_or_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let server = Hub::start(dir.path()).await;
    let http = reqwest::Client::new();
    // Some work for every part that runs until shutdown: requests, and the
    // housekeeping loop's first ticks (it runs every second; /readyz answered, so it
    // has started).
    for path in [
        "/readyz",
        "/oauth2/jwks",
        "/login",
        "/.well-known/openid-configuration",
    ] {
        let r = http
            .get(format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
    }
    // A keep-alive connection left open, as browsers and proxies leave them.
    let idle = http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert!(idle.status().is_success());
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // What start-up logged (e.g. that passkeys are off on an IP address) is not the
    // shutdown's: only what comes after SIGTERM is checked.
    let before = std::fs::read_to_string(dir.path().join("hub.log"))
        .unwrap()
        .len();
    assert!(server.stop().await, "the hub exits 0 on SIGTERM");
    let whole = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    let log = &whole[before..];
    assert!(
        log.contains("shutting down"),
        "the shutdown was logged: {log}"
    );
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN"))
        .collect();
    assert!(bad.is_empty(), "a clean shutdown logged: {bad:#?}");
}
