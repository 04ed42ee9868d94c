use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Ready when the database answers a read and takes a write: a replica whose
/// database is unreachable, frozen, full or read-only should get no traffic. The
/// body says which (fixed reasons, nothing internal).
async fn ready(State(app): State<AppState>) -> impl IntoResponse {
    let now = app.clock().now();
    // A frozen database server never answers: the probe gives up before the
    // orchestrator's own probe timeout does.
    let checked = tokio::time::timeout(READY_TIMEOUT, app.store().check_writable(now))
        .await
        .unwrap_or_else(|_| {
            Err(crate::store::StoreError::Unavailable {
                reason: "database not answering",
                detail: format!("no answer within {READY_TIMEOUT:?}"),
            })
        });
    match checked {
        Ok(()) => {
            super::metrics::store_ready(true);
            (StatusCode::OK, "ready".to_string())
        }
        Err(e) => {
            super::metrics::store_ready(false);
            tracing::warn!(error = %e, "readiness check failed");
            let why = match &e {
                crate::store::StoreError::Unavailable { reason, .. } => reason,
                _ => "database error",
            };
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}"))
        }
    }
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        super::metrics::render(),
    )
}
