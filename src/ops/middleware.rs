use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use std::time::{Duration, Instant};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let resp = next.run(req).await;
    super::metrics::http_request(
        &method,
        &route,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

/// A request id from the client is kept only when it looks like one (it ends up in
/// logs and the audit log); otherwise the hub assigns its own.
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let ok = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        });
    if !ok {
        req.headers_mut().remove(REQUEST_ID);
    }
    next.run(req).await
}

/// A request that runs past `server.request_timeout_seconds` is the server's delay
/// (typically a database that stopped answering), not the client's: 503
/// problem+json with `Retry-After`, not 408.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    req: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "request timed out");
            crate::ops::metrics::store_unavailable("request timed out");
            axum::response::IntoResponse::into_response(crate::error::AppError::Unavailable(
                "The request took longer than the server allows. A change it asked for may or may not have been saved: read the record before sending it again.".into(),
            ))
        }
    }
}

/// Layers, outermost first: request id → trace span (id, method, path; never
/// headers, query strings or bodies, which may hold secrets) → id echoed on the
/// response → bare errors shaped (`bare_errors`) → panic guard → timeout → body
/// limit → security headers → metrics → the pages' address check (`web::address`) →
/// the input rule (`input::edge`). Router
/// layers wrap each route, so all of them run after routing.
pub fn apply(router: Router, state: &AppState) -> Router {
    let config = state.config();
    let https = config.issuer().starts_with("https://");
    let mut router = router
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::input::edge::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::address::enforce,
        ))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ));
    if https {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router
        .layer(tower_http::limit::RequestBodyLimitLayer::new(config.server.request_body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            config.server.request_timeout(),
            time_limit,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::bare_errors::shape))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(sanitize_request_id))
}
