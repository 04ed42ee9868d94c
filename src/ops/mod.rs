//! Operations: health and readiness probes, Prometheus metrics, and the HTTP
//! middleware every route shares (request ids, tracing, limits, security headers).

pub(crate) mod audience;
mod bare_errors;
mod health;
pub mod metrics;
mod middleware;

pub use middleware::apply as apply_middleware;

pub fn router() -> axum::Router<crate::AppState> {
    health::router()
}
