//! One HTTP/1.1 connection: served by hyper, watched for the time limits, and, on a
//! reserve connection, limited to the probes and the scrape.
//!
//! hyper 1.x has `header_read_timeout`, but it also runs while a kept-alive
//! connection waits for its next request (`proto/h1/conn.rs`: the timer starts when the
//! head is first polled, and an idle connection polls for the next head at once), so the
//! header limit and the idle limit could not differ. The limits are kept here instead,
//! with the semantics of Go's `net/http` (`ReadHeaderTimeout`, `IdleTimeout`):
//! - head: from the connection's start, or from the first byte after an idle pause,
//!   until the whole request head has arrived: `header_read_timeout`;
//! - idle: from the end of a response until the next request's first byte:
//!   `keep_alive_idle`;
//! - busy: a request in flight; closed only when no byte has moved either way for
//!   `stall` (a client that never reads its response holds no socket for ever).

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tower::ServiceExt;

use super::admission::ReserveSlot;
use super::listener::{Event, Shared};

const HEAD: u8 = 0;
const BUSY: u8 = 1;
const IDLE: u8 = 2;

/// The paths a reserve connection may ask for.
const OPS_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// What a connection is doing and since when (milliseconds from `origin`).
struct Activity {
    origin: Instant,
    phase: AtomicU8,
    since_ms: AtomicU64,
    last_io_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Signalled when a deadline may have moved earlier (idle → head, busy → idle).
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            phase: AtomicU8::new(HEAD),
            since_ms: AtomicU64::new(0),
            last_io_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            changed: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn enter(&self, phase: u8) {
        self.enter_at(phase, self.now_ms());
    }

    fn enter_at(&self, phase: u8, now_ms: u64) {
        self.since_ms.store(now_ms, Ordering::Relaxed);
        self.last_io_ms.store(now_ms, Ordering::Relaxed);
        self.phase.store(phase, Ordering::Release);
    }

    fn on_read(&self) {
        self.on_read_at(self.now_ms());
    }

    fn on_read_at(&self, now_ms: u64) {
        if self.phase.load(Ordering::Acquire) == IDLE {
            // The next request's first byte: its head must now arrive in time.
            self.enter_at(HEAD, now_ms);
            self.changed.notify_one();
        } else {
            self.last_io_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn begin_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.enter(BUSY);
        InFlight(self.clone())
    }

    /// The current phase and when it runs out.
    fn deadline(&self, shared: &Shared) -> (u8, Instant) {
        let phase = self.phase.load(Ordering::Acquire);
        let since = self.since_ms.load(Ordering::Relaxed);
        let limits = &shared.limits;
        let (from, allowed) = match phase {
            HEAD => (since, limits.header_read),
            IDLE => (since, limits.keep_alive_idle),
            _ => (
                since.max(self.last_io_ms.load(Ordering::Relaxed)),
                limits.stall,
            ),
        };
        let at = self.origin + std::time::Duration::from_millis(from) + allowed;
        (phase, at)
    }
}

/// A request in flight, from the service call until hyper drops the response body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.enter(IDLE);
            self.0.changed.notify_one();
        }
    }
}

/// The response body, holding the request's [`InFlight`] until hyper is done with it.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling [`Activity`] when bytes move.
struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        r
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.on_write();
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router as a hyper service for one connection: adds `ConnectInfo` (what
/// `into_make_service_with_connect_info` did) and, on a reserve connection, answers
/// anything but the probes and the scrape with 503.
#[derive(Clone)]
struct ConnService {
    router: Router,
    remote: SocketAddr,
    activity: Arc<Activity>,
    reserve: Option<Arc<ReserveSlot>>,
    shared: Arc<Shared>,
}

type ServiceFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ServiceFuture;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin_request();
        let mut close = false;
        if let Some(slot) = &self.reserve {
            close = true;
            let admitted = slot.begin_serving();
            if !admitted || !OPS_PATHS.contains(&req.uri().path()) {
                self.shared.record(Event::ReservedForOps);
                let resp = over_capacity(self.shared.limits.retry_after_seconds);
                return Box::pin(std::future::ready(Ok(track(resp, in_flight))));
            }
        }
        req.extensions_mut().insert(ConnectInfo(self.remote));
        let router = self.router.clone();
        Box::pin(async move {
            let mut resp = match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if close {
                // One request per reserve connection: the slot is free again at once.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(track(resp, in_flight))
        })
    }
}

fn track(resp: Response<Body>, in_flight: InFlight) -> Response<Body> {
    resp.map(|inner| {
        Body::new(TrackedBody {
            inner,
            _in_flight: in_flight,
        })
    })
}

/// 503 problem+json (RFC 9457) for a request that arrived on a reserve connection.
fn over_capacity(retry_after_seconds: u64) -> Response<Body> {
    let body = serde_json::json!({
        "type": "urn:hms-ach:problem:unavailable",
        "title": "Service unavailable",
        "status": 503,
        "detail": "The hub is at its connection limit. Try again after the time in Retry-After.",
    });
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

/// Serves one accepted connection until it ends, times out, is evicted from the
/// reserve, or the server shuts down (in-flight requests finish first).
pub(super) async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    shared: Arc<Shared>,
    reserve: Option<Arc<ReserveSlot>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(TrackedIo {
        inner: stream,
        activity: activity.clone(),
    });
    let service = ConnService {
        router,
        remote,
        activity: activity.clone(),
        reserve: reserve.clone(),
        shared: shared.clone(),
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    // The time limits are kept below (see the module comment), not by hyper.
    builder.header_read_timeout(None);
    if reserve.is_some() {
        builder.keep_alive(false);
    }
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let sleep = tokio::time::sleep_until(Instant::now());
    tokio::pin!(sleep);
    let evicted = async {
        match &reserve {
            Some(slot) => slot.evicted().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(evicted);
    let mut closing = false;
    loop {
        let (_, deadline) = activity.deadline(&shared);
        sleep.as_mut().reset(deadline);
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %remote, "connection ended with an error");
                }
                return;
            }
            // Counted where the newer connection was admitted.
            () = &mut evicted => return,
            () = activity.changed.notified() => {}
            () = &mut sleep => {
                // Bytes may have moved since the deadline was read: look again.
                let (phase, deadline) = activity.deadline(&shared);
                if deadline <= Instant::now() {
                    shared.record(match phase {
                        HEAD => Event::HeaderTimeout,
                        IDLE => Event::IdleTimeout,
                        _ => Event::Stalled,
                    });
                    return;
                }
            }
            changed = shutdown.changed(), if !closing => {
                closing = true;
                if changed.is_ok() {
                    // Closes an idle connection now; one in flight after its response.
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_reserve_answer_is_problem_json_with_retry_after_and_close() {
        let resp = over_capacity(7);
        assert_eq!(resp.status(), 503);
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        assert_eq!(resp.headers()["retry-after"], "7");
        assert_eq!(resp.headers()["connection"], "close");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["type"], "urn:hms-ach:problem:unavailable");
        assert_eq!(v["status"], 503);
    }

    #[test]
    fn each_phase_has_its_own_deadline() {
        let shared = Shared::for_tests(2, 5, 30);
        let a = Activity::new();
        let at = |a: &Activity| {
            let (phase, at) = a.deadline(&shared);
            (phase, (at - a.origin).as_millis())
        };
        assert_eq!(
            at(&a),
            (HEAD, 2_000),
            "a new connection has the header limit"
        );
        a.enter_at(BUSY, 1_000);
        assert_eq!(at(&a), (BUSY, 31_000));
        a.on_read_at(20_000);
        assert_eq!(
            at(&a),
            (BUSY, 50_000),
            "a busy connection lives while bytes move"
        );
        a.enter_at(IDLE, 21_000);
        assert_eq!(at(&a), (IDLE, 26_000));
        a.on_read_at(22_000);
        assert_eq!(
            at(&a),
            (HEAD, 24_000),
            "the next request's head starts its limit"
        );
        a.on_read_at(23_000);
        assert_eq!(
            at(&a),
            (HEAD, 24_000),
            "more bytes of the same head do not extend it"
        );
    }

    #[tokio::test]
    async fn a_finished_response_makes_the_connection_idle() {
        let shared = Shared::for_tests(2, 5, 30);
        let a = Arc::new(Activity::new());
        let first = a.begin_request();
        assert_eq!(a.deadline(&shared).0, BUSY);
        drop(first);
        assert_eq!(a.deadline(&shared).0, IDLE);
        tokio::time::timeout(std::time::Duration::from_secs(5), a.changed.notified())
            .await
            .unwrap();
    }
}
