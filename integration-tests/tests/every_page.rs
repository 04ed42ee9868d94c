//! The hub's main pages in Chromium (playwright-core) with the configuration a district
//! runs: a SAML and an OIDC district IdP, a SAML app, a second factor for privileged
//! roles (issue 14, defect 1: the sign-in page once failed only when a district IdP
//! was configured). Each page is checked with axe-core (WCAG 2.1 A/AA) and saved under
//! target/screenshots/pages/. The demo without upstream IdPs is walked by
//! `sso.rs::chromium_signs_in_through_the_real_pages`; every page in every
//! configuration, in-process, by `src/tests/every_page.rs`.

use integration_tests::{client_json as client, run_node, setup_peers, workspace, Hub};

const DEMO_PASSWORD: &str = "riverside-demo-2026";

const SP_METADATA: &str = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://app.test/sp">
<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="false">
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://app.test/acs" index="1"/>
</md:SPSSODescriptor></md:EntityDescriptor>"#;

#[tokio::test]
async fn chromium_walks_every_main_page_with_district_idps_saml_apps_and_mfa() {
    setup_peers();
    let dir = tempfile::tempdir().unwrap();
    let idp_metadata = workspace().join("bench/saml/fixture/idp-metadata.xml");
    let sp = dir.path().join("sp.xml");
    std::fs::write(&sp, SP_METADATA).unwrap();
    let secret = dir.path().join("oidc-secret");
    std::fs::write(&secret, "s3cret-from-the-provider").unwrap();
    let config = dir.path().join("district.toml");
    std::fs::write(
        &config,
        format!(
            "[mfa]\nprivileged_roles = \"any\"\nenroll_at_signin = true\n\n\
             [[federation.saml_idps]]\nid = \"district\"\ndisplay_name = \"District SSO\"\nmetadata_file = \"{}\"\n\n\
             [[federation.oidc_idps]]\nid = \"staff\"\ndisplay_name = \"Staff (Entra)\"\nissuer = \"http://127.0.0.1:9/\"\n\
             client_id = \"hub\"\nclient_secret_file = \"{}\"\nemail_domains = [\"staff.example\"]\n\n\
             [[saml_apps.service_providers]]\nid = \"portal-app\"\nentity_id = \"https://app.test/sp\"\n\
             display_name = \"Portal app\"\nmetadata_file = \"{}\"\nidp_initiated = true\n",
            idp_metadata.display(),
            secret.display(),
            sp.display()
        ),
    )
    .unwrap();
    let config_env = config.display().to_string();
    let hub = Hub::start_demo(dir.path(), &[("HMS_ACH_CONFIG", config_env.as_str())]).await;
    let student = Hub::demo_username(dir.path(), "student");
    let admin = Hub::demo_username(dir.path(), "hub administrator");
    let port = integration_tests::free_port();
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let c = client(
        dir.path(),
        &[
            "--name",
            "District LMS",
            "--public",
            "--grant",
            "authorization_code",
            "--scope",
            "openid",
            "--scope",
            "profile",
            "--scope",
            "email",
            "--redirect-uri",
            &redirect,
        ],
    );
    let shots = workspace().join("target/screenshots/pages");
    std::fs::create_dir_all(&shots).unwrap();
    let out = run_node(
        "pages_browser.mjs",
        vec![
            hub.base.clone(),
            c["client_id"].as_str().unwrap().to_string(),
            redirect,
            student,
            DEMO_PASSWORD.to_string(),
            admin,
            DEMO_PASSWORD.to_string(),
            shots.display().to_string(),
        ],
        vec![],
    )
    .await;
    for step in [
        "sign-in-page-with-district-idps",
        "consent-and-back-to-the-app",
        "portal-pages",
        "error-pages",
        "another-address",
        "second-step-for-a-privileged-person",
    ] {
        assert!(out.contains(&format!("ok {step}\n")), "{step}: {out}");
    }
    let log = std::fs::read_to_string(dir.path().join("hub.log")).unwrap();
    assert!(
        !log.contains("rendering a page failed"),
        "a page failed to render: {log}"
    );
    assert!(hub.stop().await);
}
