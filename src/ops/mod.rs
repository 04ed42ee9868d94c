//! Operations: health and readiness probes, Prometheus metrics, the HTTP
//! middleware every route shares (request ids, tracing, limits, security headers), and
//! the listener that accepts connections under the connection limits.

mod admission;
pub(crate) mod audience;
mod bare_errors;
mod connection;
mod health;
mod listener;
pub mod metrics;
mod middleware;

pub use listener::{raise_file_limit, serve, ConnectionLimits};
pub use middleware::apply as apply_middleware;

pub fn router() -> axum::Router<crate::AppState> {
    health::router()
}
