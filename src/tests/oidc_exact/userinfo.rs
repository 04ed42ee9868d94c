//! UserInfo (OpenID Connect Core §5.3) with the token in a form body (RFC 6750 §2.2)
//! and a bare challenge without a token (RFC 6750 §3.1).

use super::*;

store_test!(
    userinfo_takes_a_form_body_and_challenges_without_a_token,
    |t: TestApp| async move {
        let person = t.account("hal.u").await;
        let rp = rp_with(&t, &["openid", "profile"], true).await;
        let mut b = t.agent();
        let tokens = tokens_for(&t, &mut b, &rp, "hal.u").await;
        let at = tokens["access_token"].as_str().unwrap();
        // RFC 6750 §2.2: the token in a form-encoded POST body.
        let (s, _, info) = t
            .form("/oauth2/userinfo", &format!("access_token={at}"), None)
            .await;
        assert_eq!(s, StatusCode::OK, "{info}");
        assert_eq!(info["sub"], person);
        // Both ways at once: invalid_request.
        let (s, _, e) = t
            .form(
                "/oauth2/userinfo",
                &format!("access_token={at}"),
                Some(&format!("Bearer {at}")),
            )
            .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request"))
        );
        // RFC 6750 §3.1: no token at all: 401 and a challenge without an error code.
        for method in [Method::GET, Method::POST] {
            let (s, h, _) = t.call(method.clone(), "/oauth2/userinfo", None, None).await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{method}");
            let challenge = h[header::WWW_AUTHENTICATE].to_str().unwrap();
            assert!(challenge.starts_with("Bearer"), "{challenge}");
            assert!(!challenge.contains("error"), "{challenge}");
        }
        // A bad token still names the error.
        let (s, h, _) = t
            .call(Method::GET, "/oauth2/userinfo", Some("nope"), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(h[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\""));
    }
);
