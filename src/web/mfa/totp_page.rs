//! The authenticator-app set-up page (the portal and a first sign-in share it): the
//! `otpauth://` URI as a QR code (SVG, no image request) and the secret in groups.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::authn::totp;
use crate::web::{page, Browser};
use crate::AppState;

pub(crate) fn totp_setup_page(
    app: &AppState,
    browser: &Browser,
    en: &totp::Enrollment,
    confirm_action: &str,
    alert: Option<String>,
) -> Response {
    let qr = match qrcode::QrCode::new(en.uri.as_bytes()) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color>()
                .min_dimensions(220, 220)
                .build();
            // The renderer starts with an XML declaration, which HTML does not want.
            svg.find("<svg").map(|i| svg[i..].to_string())
        }
        Err(e) => {
            tracing::warn!(error = %e, "QR code not rendered");
            None
        }
    };
    let grouped: Vec<String> = en
        .secret_base32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let ctx = minijinja::context! {
        lang => "en", csrf => browser.csrf(app), qr_svg => qr, secret => grouped.join(" "),
        uri => en.uri, action => confirm_action, alert => alert,
    };
    let mut resp = browser.finish(app, page(app, StatusCode::OK, "totp_setup.html", ctx));
    // The secret is on this page: never keep it in a cache.
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}
