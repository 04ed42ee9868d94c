//! The input rule (issue 13, defect 4): control characters in any path segment,
//! parameter, form field or JSON string of any route are a 400 naming the field, in
//! the route's own error form, on both databases, and nothing is stored; names
//! refuse bidi and invisible characters.

use super::*;

/// A control character as a URL would carry it and as a JSON string escapes it:
/// NUL, another C0 control, DEL and a C1 control (NEL, U+0085).
const PAYLOADS: &[(&str, &str)] = &[
    ("%00", "\\u0000"),
    ("%01", "\\u0001"),
    ("%7F", "\\u007f"),
    ("%C2%85", "\\u0085"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    None,
    Urlencoded,
    Json,
    MergePatch,
}

/// One request with `P` where the payload goes, and the field it must be refused on
/// (a trailing `*` matches a prefix: member names are shown with the code point).
struct Case {
    method: &'static str,
    path: &'static str,
    form: Form,
    body: &'static str,
    field: &'static str,
}

const fn case(method: &'static str, path: &'static str, field: &'static str) -> Case {
    Case {
        method,
        path,
        form: Form::None,
        body: "",
        field,
    }
}

const fn form(path: &'static str, body: &'static str, field: &'static str) -> Case {
    Case {
        method: "POST",
        path,
        form: Form::Urlencoded,
        body,
        field,
    }
}

const fn json(
    method: &'static str,
    path: &'static str,
    body: &'static str,
    field: &'static str,
) -> Case {
    Case {
        method,
        path,
        form: Form::Json,
        body,
        field,
    }
}

const PERSON: &str = r#""sourcedId":"u9","kinds":["student"],"familyName":"B""#;

/// Every route of the router (`every_route_is_covered` checks the list against the
/// sources), each parameter place it reads.
fn cases() -> Vec<Case> {
    vec![
        // OAuth back channel: RFC 6749 JSON.
        form(
            "/oauth2/token",
            "grant_type=client_credentials&client_id=P&client_secret=s",
            "client_id",
        ),
        form(
            "/oauth2/token",
            "grant_type=refresh_token&refresh_token=P",
            "refresh_token",
        ),
        form(
            "/oauth2/token",
            "grant_type=authorization_code&code=P&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            "code",
        ),
        form("/oauth2/introspect", "token=P", "token"),
        form(
            "/oauth2/revoke",
            "token=P&token_type_hint=access_token",
            "token",
        ),
        form("/oauth2/par", "client_id=P&response_type=code", "client_id"),
        case("GET", "/oauth2/userinfo?access_token=P", "access_token"),
        form("/oauth2/userinfo", "access_token=P", "access_token"),
        case("GET", "/oauth2/jwks?kid=P", "kid"),
        case("GET", "/.well-known/openid-configuration?x=P", "x"),
        // Browser pages: the HTML error page.
        case(
            "GET",
            "/oauth2/authorize?client_id=P&response_type=code",
            "client_id",
        ),
        form(
            "/oauth2/authorize",
            "client_id=x&response_type=code&state=P",
            "state",
        ),
        case("GET", "/oauth2/authorize/resume?request=P", "request"),
        case("GET", "/oauth2/logout?id_token_hint=P", "id_token_hint"),
        form(
            "/oauth2/logout",
            "post_logout_redirect_uri=P",
            "post_logout_redirect_uri",
        ),
        case("GET", "/login?request=P", "request"),
        form("/login", "csrf=x&username=P&password=x", "username"),
        form("/login", "csrf=x&username=ana&password=P", "password"),
        case("GET", "/select-account?request=P", "request"),
        form("/select-account", "csrf=x&request=P", "request"),
        case("GET", "/consent?request=P", "request"),
        form("/consent", "csrf=x&request=r&decision=P", "decision"),
        case("GET", "/login/idp/P", "idp"),
        form("/login/discover", "csrf=x&email=P", "email"),
        case("GET", "/login/federated?state=P", "state"),
        case("GET", "/saml/sp/P/metadata", "idp"),
        form("/saml/sp/P/acs", "SAMLResponse=x", "idp"),
        // Line breaks are allowed in the base64 of SAML messages; controls are not.
        form(
            "/saml/sp/x/acs",
            "SAMLResponse=ZHNh%0D%0AbWw+P&RelayState=r",
            "SAMLResponse",
        ),
        form(
            "/saml/sp/x/acs",
            "SAMLResponse=x&RelayState=P",
            "RelayState",
        ),
        case("GET", "/saml/idp/metadata?x=P", "x"),
        case("GET", "/saml/idp/sso?SAMLRequest=P", "SAMLRequest"),
        form("/saml/idp/sso", "SAMLRequest=x&RelayState=P", "RelayState"),
        form("/saml/idp/init/P", "csrf=x", "sp"),
        case("GET", "/login/oidc/P/callback?code=c&state=s", "idp"),
        case("GET", "/login/oidc/x/callback?code=P&state=s", "code"),
        case("GET", "/login/mfa?request=P", "request"),
        case("GET", "/login/mfa/step-up?return=P", "return"),
        form("/login/mfa/code", "csrf=x&code=P", "code"),
        form("/login/mfa/enroll/totp", "csrf=P", "csrf"),
        form("/login/mfa/enroll/totp/confirm", "csrf=x&code=P", "code"),
        case("GET", "/portal?x=P", "x"),
        case("GET", "/portal/sessions?x=P", "x"),
        form("/portal/sessions/end", "csrf=x&session=P", "session"),
        form("/portal/sessions/end-all", "csrf=P", "csrf"),
        case("GET", "/portal/apps?x=P", "x"),
        form("/portal/apps/revoke", "csrf=x&client_id=P", "client_id"),
        case("GET", "/portal/password?reason=P", "reason"),
        form("/portal/password", "csrf=x&current=P&new=y", "current"),
        case("GET", "/portal/security?done=P", "done"),
        form("/portal/security/totp", "csrf=P", "csrf"),
        form("/portal/security/totp/confirm", "csrf=x&code=P", "code"),
        form("/portal/security/totp/remove", "csrf=P", "csrf"),
        form("/portal/security/recovery", "csrf=P", "csrf"),
        form("/portal/security/passkeys/remove", "csrf=x&id=P", "id"),
        case("GET", "/static/hms.css?v=P", "v"),
        case("GET", "/static/passkey.js?v=P", "v"),
        case("GET", "/?x=P", "x"),
        // The pages' scripts send JSON: problem+json.
        json("POST", "/login/passkey/options", r#"{"csrf":"P"}"#, "csrf"),
        json(
            "POST",
            "/login/passkey",
            r#"{"csrf":"x","request":"P"}"#,
            "request",
        ),
        json(
            "POST",
            "/login/mfa/passkey/options",
            r#"{"csrf":"P"}"#,
            "csrf",
        ),
        json(
            "POST",
            "/login/mfa/passkey",
            r#"{"csrf":"x","credential":{"id":"P"}}"#,
            "credential.id",
        ),
        json(
            "POST",
            "/login/mfa/enroll/passkey/options",
            r#"{"csrf":"P"}"#,
            "csrf",
        ),
        json(
            "POST",
            "/login/mfa/enroll/passkey",
            r#"{"csrf":"x","credential":{"response":{"transports":["P"]}}}"#,
            "credential.response.transports[0]",
        ),
        json(
            "POST",
            "/portal/security/passkeys/options",
            r#"{"csrf":"P"}"#,
            "csrf",
        ),
        json(
            "POST",
            "/portal/security/passkeys",
            r#"{"csrf":"x","name":"P"}"#,
            "name",
        ),
        // The admin API: problem+json.
        json(
            "POST",
            "/api/v1/users",
            r#"{"sourcedId":"u9","kinds":["student"],"givenName":"P","familyName":"B"}"#,
            "givenName",
        ),
        json(
            "POST",
            "/api/v1/users",
            r#"{"sourcedId":"u9","kinds":["student"],"givenName":"A","familyName":"B","identifiers":{"sis":"P"}}"#,
            "identifiers.sis",
        ),
        json(
            "POST",
            "/api/v1/users",
            r#"{"sourcedId":"u9","kinds":["student"],"givenName":"A","familyName":"B","identifiers":{"P":"1"}}"#,
            "identifiers.U+00*",
        ),
        json(
            "POST",
            "/api/v1/users",
            r#"{"sourcedId":"u9","kinds":["student"],"givenName":"A","familyName":"B","affiliations":[{"org":"s1","role":"P"}]}"#,
            "affiliations[0].role",
        ),
        json(
            "POST",
            "/api/v1/users",
            r#"{"sourcedId":"u9","kinds":["student"],"givenName":"A","familyName":"B","username":"P"}"#,
            "username",
        ),
        case("GET", "/api/v1/users?org=P", "org"),
        case("GET", "/api/v1/users?updatedSince=P", "updatedSince"),
        case("GET", "/api/v1/users?kind=student&status=P", "status"),
        case("GET", "/api/v1/users/P", "id"),
        Case {
            method: "PATCH",
            path: "/api/v1/users/P",
            form: Form::MergePatch,
            body: r#"{"givenName":"x"}"#,
            field: "id",
        },
        Case {
            method: "PATCH",
            path: "/api/v1/users/u1",
            form: Form::MergePatch,
            body: r#"{"familyName":"P"}"#,
            field: "familyName",
        },
        json(
            "POST",
            "/api/v1/users/u1/lifecycle",
            r#"{"status":"suspended","reason":"P"}"#,
            "reason",
        ),
        json(
            "POST",
            "/api/v1/users/P/lifecycle",
            r#"{"status":"suspended"}"#,
            "id",
        ),
        json(
            "POST",
            "/api/v1/users/u1/password",
            r#"{"password":"P"}"#,
            "password",
        ),
        case("GET", "/api/v1/users/P/roles", "id"),
        json(
            "POST",
            "/api/v1/users/u1/roles",
            r#"{"role":"P","org":"s1"}"#,
            "role",
        ),
        json(
            "POST",
            "/api/v1/users/u1/roles",
            r#"{"role":"auditor","org":"P"}"#,
            "org",
        ),
        case("DELETE", "/api/v1/users/u1/roles/P", "assignment"),
        json(
            "POST",
            "/api/v1/orgs",
            r#"{"sourcedId":"o9","kind":"school","name":"P","parent":"d1"}"#,
            "name",
        ),
        json(
            "POST",
            "/api/v1/orgs",
            r#"{"sourcedId":"o9","kind":"school","name":"O","parent":"d1","identifier":"P"}"#,
            "identifier",
        ),
        case("GET", "/api/v1/orgs?parent=P", "parent"),
        case("GET", "/api/v1/orgs/P", "id"),
        Case {
            method: "PATCH",
            path: "/api/v1/orgs/s1",
            form: Form::MergePatch,
            body: r#"{"name":"P"}"#,
            field: "name",
        },
        case("GET", "/api/v1/clients?x=P", "x"),
        json(
            "POST",
            "/api/v1/clients",
            r#"{"name":"P","grant_types":["client_credentials"],"scopes":["users.read"]}"#,
            "name",
        ),
        json(
            "POST",
            "/api/v1/clients",
            r#"{"name":"n","grant_types":["authorization_code"],"scopes":["openid"],"redirect_uris":["https://app.example/P"]}"#,
            "redirect_uris[0]",
        ),
        case("GET", "/api/v1/clients/P", "id"),
        Case {
            method: "PATCH",
            path: "/api/v1/clients/P",
            form: Form::MergePatch,
            body: "{}",
            field: "id",
        },
        case("DELETE", "/api/v1/clients/P", "id"),
        case("POST", "/api/v1/clients/P/rotate-secret", "id"),
        case("GET", "/api/v1/audit?action=P", "action"),
        case("GET", "/api/v1/events?subject=P", "subject"),
        case("GET", "/api/v1/subscribers/P", "id"),
        json(
            "POST",
            "/api/v1/subscribers",
            r#"{"name":"P","url":"https://lms.example/hook"}"#,
            "name",
        ),
        json(
            "POST",
            "/api/v1/subscribers",
            r#"{"name":"lms","url":"https://lms.example/P"}"#,
            "url",
        ),
        case("DELETE", "/api/v1/subscribers/P", "id"),
        case("POST", "/api/v1/subscribers/P/pause", "id"),
        case("POST", "/api/v1/subscribers/P/resume", "id"),
        case("POST", "/api/v1/subscribers/P/rotate-secret", "id"),
        json(
            "POST",
            "/api/v1/subscribers/P/replay",
            r#"{"fromSequence":1}"#,
            "id",
        ),
        json(
            "POST",
            "/api/v1/subscribers/P/dead-letters/requeue",
            r#"{"sequences":[]}"#,
            "id",
        ),
        case("GET", "/api/v1/subscribers/P/dead-letters", "id"),
        case("GET", "/api/v1/jobs?x=P", "x"),
        case("GET", "/api/v1/jobs/P/runs", "name"),
        case("GET", "/api/v1/jobs/signin-sweep/runs?cursor=P", "cursor"),
        case("POST", "/api/v1/jobs/P/run", "name"),
        case("GET", "/api/v1/mail?state=P", "state"),
        case("GET", "/healthz?x=P", "x"),
        case("GET", "/readyz?x=P", "x"),
        case("GET", "/metrics?x=P", "x"),
        case("GET", "/nowhere/P", "path"),
    ]
}

#[derive(Debug, PartialEq, Eq)]
enum Audience {
    OAuth,
    Page,
    Api,
}

fn audience_of(c: &Case) -> Audience {
    let page = [
        "/login",
        "/portal",
        "/consent",
        "/select-account",
        "/saml",
        "/static",
    ]
    .iter()
    .any(|p| c.path.starts_with(p))
        || c.path.starts_with("/oauth2/authorize")
        || c.path.starts_with("/oauth2/logout")
        || c.path.starts_with("/?");
    if page && c.form != Form::Json {
        Audience::Page
    } else if c.path.starts_with("/oauth2/") || c.path.starts_with("/.well-known/") {
        Audience::OAuth
    } else {
        Audience::Api
    }
}

fn request_of(c: &Case, url: &str, js: &str, token: Option<&str>) -> Request<Body> {
    let mut req = Request::builder()
        .method(c.method)
        .uri(c.path.replace('P', url));
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let body = match c.form {
        Form::None => String::new(),
        Form::Urlencoded => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            c.body.replace('P', url)
        }
        Form::Json | Form::MergePatch => {
            let ct = if c.form == Form::Json {
                "application/json"
            } else {
                "application/merge-patch+json"
            };
            req = req.header(header::CONTENT_TYPE, ct);
            c.body
                .replace("\"P\"", &format!("\"{js}\""))
                .replace("/P\"", &format!("/{js}\""))
        }
    };
    req.body(Body::from(body)).unwrap()
}

fn field_matches(found: &str, wanted: &str) -> bool {
    match wanted.strip_suffix('*') {
        Some(prefix) => found.starts_with(prefix),
        None => found == wanted,
    }
}

/// The answer is a 400 in the route's own form, naming the field.
fn assert_refused(c: &Case, url: &str, status: StatusCode, headers: &HeaderMap, body: &Value) {
    let what = format!("{} {} {} with {url}: {body}", c.method, c.path, c.body);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match audience_of(c) {
        Audience::Api => {
            assert_eq!(ct, "application/problem+json", "{what}");
            let errors = body["errors"].as_array().expect(&what);
            assert!(
                errors
                    .iter()
                    .any(|e| field_matches(e["field"].as_str().unwrap_or(""), c.field)),
                "field {} not named: {what}",
                c.field
            );
        }
        Audience::OAuth => {
            assert!(ct.starts_with("application/json"), "{what}");
            assert_eq!(body["error"], "invalid_request", "{what}");
            let d = body["error_description"].as_str().unwrap_or("");
            assert!(
                d.contains(&format!("field {}", c.field.trim_end_matches('*'))),
                "{what}"
            );
            assert!(d.bytes().all(|b| (0x20..0x7f).contains(&b)), "{what}");
        }
        Audience::Page => {
            assert!(ct.starts_with("text/html"), "{what}");
            let html = body.as_str().unwrap_or("");
            assert!(
                html.contains(&format!("field {}", c.field.trim_end_matches('*'))),
                "field {} not named: {what}",
                c.field
            );
        }
    }
}

pub(super) async fn seed_person(t: &TestApp, admin: &str) {
    seed_orgs(t, admin).await;
    let body = serde_json::json!({
        "sourcedId": "u1", "kinds": ["student"], "givenName": "Ana", "familyName": "Ruiz",
        "username": "ana.ruiz", "affiliations": [{"org": "s1", "role": "student"}]
    });
    let (s, _, b) = t
        .call(Method::POST, "/api/v1/users", Some(admin), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

/// What the rule must have kept out: no new person, org, client or role, no change.
async fn assert_nothing_stored(t: &TestApp, admin: &str) {
    let (_, _, users) = t
        .call(Method::GET, "/api/v1/users", Some(admin), None)
        .await;
    assert_eq!(users["items"].as_array().unwrap().len(), 1, "{users}");
    let u = &users["items"][0];
    assert_eq!(u["familyName"], "Ruiz");
    assert_eq!(u["status"], "active");
    assert!(
        u["identifiers"].as_object().is_none_or(|m| m.is_empty()),
        "{u}"
    );
    let (_, _, orgs) = t.call(Method::GET, "/api/v1/orgs", Some(admin), None).await;
    assert_eq!(orgs["items"].as_array().unwrap().len(), 4, "{orgs}");
    assert!(orgs["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|o| o["name"].as_str().unwrap().starts_with("Org ")));
    let (_, _, clients) = t
        .call(Method::GET, "/api/v1/clients", Some(admin), None)
        .await;
    assert_eq!(clients["items"].as_array().unwrap().len(), 1, "{clients}");
    let (_, _, roles) = t
        .call(Method::GET, "/api/v1/users/u1/roles", Some(admin), None)
        .await;
    assert_eq!(roles["items"], serde_json::json!([]), "{roles}");
}

store_test!(
    controls_are_refused_on_every_route_and_nothing_is_stored,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_person(&t, &admin).await;
        for c in cases() {
            for (url, js) in PAYLOADS {
                // With the administrator's token, so that nothing but the rule stands in the way.
                let (s, h, b) = t.send(request_of(&c, url, js, Some(&admin))).await;
                assert_refused(&c, url, s, &h, &b);
            }
        }
        assert_nothing_stored(&t, &admin).await;
    }
);

store_test!(
    client_ids_in_basic_credentials_are_checked_too,
    |t: TestApp| async move {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("%00:secret");
        let (s, _, b) = t
            .form(
                "/oauth2/token",
                "grant_type=client_credentials",
                Some(&format!("Basic {basic}")),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
        assert_eq!(b["error"], "invalid_request");
        assert!(b["error_description"]
            .as_str()
            .unwrap()
            .contains("client_id"));
    }
);

store_test!(
    names_with_bidi_or_invisible_characters_are_refused,
    |t: TestApp| async move {
        let admin = t.admin_token().await;
        seed_person(&t, &admin).await;
        let person = |field: &str, value: &str| {
            let mut v: Value = serde_json::from_str(&format!("{{{PERSON}}}")).unwrap();
            v["givenName"] = "Ana".into();
            v[field] = value.into();
            v
        };
        for (field, value) in [
            ("givenName", "Ana\u{202E}ziuR"),
            ("familyName", "Ru\u{200B}iz"),
            ("middleName", "\u{2066}M\u{2069}"),
            ("preferredName", "\u{FEFF}Annie"),
            ("givenName", "An\u{AD}a"),
            ("familyName", "Ruiz\u{200F}"),
            ("username", "ana\u{200D}ruiz"),
            ("username", "admin\u{061C}"),
        ] {
            let (s, _, b) = t
                .call(
                    Method::POST,
                    "/api/v1/users",
                    Some(&admin),
                    Some(person(field, value)),
                )
                .await;
            assert_eq!(
                s,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field} {value:?}: {b}"
            );
            assert_eq!(b["errors"][0]["field"], field, "{b}");
            let reason = b["errors"][0]["reason"].as_str().unwrap();
            assert!(reason.contains("U+"), "the character is named: {reason}");
        }
        let (s, _, b) = t
            .call(
                Method::PATCH,
                "/api/v1/users/u1",
                Some(&admin),
                Some(serde_json::json!({"familyName": "R\u{2067}uiz"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["errors"][0]["field"], "familyName");
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(serde_json::json!({
                    "sourcedId": "u9", "kinds": ["student"], "givenName": "A", "familyName": "B",
                    "affiliations": [{"org": "s1", "role": "stu\u{200B}dent"}]
                })),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["errors"][0]["field"], "affiliations[0].role");
        let (s, _, b) = t
            .call(
                Method::PATCH,
                "/api/v1/orgs/s1",
                Some(&admin),
                Some(serde_json::json!({"name": "Lincoln\u{202D} High"})),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["errors"][0]["field"], "name");
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/clients",
                Some(&admin),
                Some(serde_json::json!({
                    "name": "Grade\u{200B}book", "grant_types": ["client_credentials"],
                    "scopes": ["users.read"]
                })),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
        assert_eq!(b["errors"][0]["field"], "name");
        assert_nothing_stored(&t, &admin).await;

        // What the Nickname and UsernameCaseMapped profiles map is kept, mapped.
        let (s, _, b) = t
            .call(
                Method::POST,
                "/api/v1/users",
                Some(&admin),
                Some(serde_json::json!({
                    "sourcedId": "u2", "kinds": ["student"],
                    "givenName": " Zoe\u{0308}\u{00A0}\u{00A0}Ａｎｎ ", "familyName": "Nguyễn",
                    "username": "ＺＯＥ.N"
                })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        assert_eq!(b["givenName"], "Zoë Ann");
        assert_eq!(b["familyName"], "Nguyễn");
        assert_eq!(b["username"], "zoe.n");
        // Indic scripts need ZWJ after a virama (RFC 5892 A.2): allowed there.
        let (s, _, b) = t
            .call(
                Method::PATCH,
                "/api/v1/users/u2",
                Some(&admin),
                Some(serde_json::json!({"preferredName": "क\u{094D}\u{200D}ष"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
);

/// The paths of every `.route(` in the sources.
fn routes_in_sources() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("tests") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split(".route(").skip(1) {
                    let rest = part.trim_start();
                    if let Some(lit) = rest.strip_prefix('"') {
                        out.push(lit.split('"').next().unwrap().to_string());
                    }
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut out,
    );
    out.sort();
    out.dedup();
    out
}

fn matches_template(template: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
}

#[test]
fn every_route_is_covered() {
    let routes = routes_in_sources();
    assert!(routes.len() > 60, "{routes:?}");
    let cases = cases();
    let missing: Vec<&String> = routes
        .iter()
        .filter(|r| !cases.iter().any(|c| matches_template(r, c.path)))
        .collect();
    assert!(missing.is_empty(), "routes without a case: {missing:?}");
}
