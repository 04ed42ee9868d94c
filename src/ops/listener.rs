//! The accept loop: every connection is counted against `server.max_connections` (plus
//! the ops reserve), watched for the header, idle and stall limits
//! (`connection.rs`), and finished on shutdown. When a limit bites the hub says so in
//! a metric every time and in the log at most once per [`LOG_EVERY`], so a flood does
//! not also flood the log.

use axum::Router;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::admission::{Admission, Gate};
use super::connection::serve_connection;
use super::metrics;
use crate::config::ServerConfig;

/// At most one log line per kind of event in this time; the line says how many were
/// not logged.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// File descriptors kept for the hub besides client connections: the database pool,
/// outgoing HTTP (metadata, back-channel logout), files.
const OTHER_FILES: u64 = 256;

/// How long to pause accepting when the process is out of file descriptors: long
/// enough not to spin, short enough that a probe in the backlog is still answered.
const FILE_LIMIT_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub keep_alive_idle: Duration,
    /// A request in flight with no byte moving either way (see `connection.rs`).
    pub stall: Duration,
    pub max_connections: usize,
    pub reserved_connections: usize,
    /// What a 503 from the reserve tells the client: silent connections are gone by then.
    pub retry_after_seconds: u64,
}

impl ConnectionLimits {
    pub fn from_config(s: &ServerConfig) -> Self {
        // The request timeout bounds a handler; then the response has an idle period's
        // worth of time to be read. Capped so the arithmetic on instants cannot overflow.
        let stall = s
            .request_timeout()
            .saturating_add(s.keep_alive_idle())
            .min(Duration::from_secs(86_400));
        Self {
            header_read: s.header_read_timeout(),
            keep_alive_idle: s.keep_alive_idle(),
            stall,
            max_connections: s.max_connections,
            reserved_connections: s.reserved_connections,
            retry_after_seconds: s.header_read_timeout_seconds,
        }
    }
}

/// Something a limit did; each has its metric and its (throttled) log line.
#[derive(Debug, Clone, Copy)]
pub(super) enum Event {
    OverCapacity,
    Evicted,
    ReservedForOps,
    HeaderTimeout,
    IdleTimeout,
    Stalled,
    AcceptFileLimit,
    AcceptOther,
}

const EVENTS: usize = 8;

/// What every connection task shares with the accept loop.
pub(super) struct Shared {
    pub(super) limits: ConnectionLimits,
    origin: Instant,
    open: AtomicUsize,
    throttles: [Throttle; EVENTS],
}

impl Shared {
    fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            origin: Instant::now(),
            open: AtomicUsize::new(0),
            throttles: std::array::from_fn(|_| Throttle::new(LOG_EVERY)),
        }
    }

    #[cfg(test)]
    pub(super) fn for_tests(header: u64, idle: u64, stall: u64) -> Self {
        Self::new(ConnectionLimits {
            header_read: Duration::from_secs(header),
            keep_alive_idle: Duration::from_secs(idle),
            stall: Duration::from_secs(stall),
            max_connections: 1,
            reserved_connections: 1,
            retry_after_seconds: header,
        })
    }

    fn opened(self: &Arc<Self>) -> OpenConnection {
        self.open.fetch_add(1, Ordering::AcqRel);
        metrics::connections_open(1.0);
        OpenConnection(self.clone())
    }

    /// Counts the event and logs it unless one of its kind was logged recently.
    pub(super) fn record(&self, event: Event) {
        self.record_with(event, None);
    }

    fn record_with(&self, event: Event, error: Option<&io::Error>) {
        match event {
            Event::OverCapacity => metrics::connection_refused("over_capacity"),
            Event::Evicted => metrics::connection_refused("evicted"),
            Event::ReservedForOps => metrics::connection_refused("reserved_for_ops"),
            Event::HeaderTimeout => metrics::connection_timed_out("header"),
            Event::IdleTimeout => metrics::connection_timed_out("idle"),
            Event::Stalled => metrics::connection_timed_out("stalled"),
            Event::AcceptFileLimit => metrics::accept_failed("file_limit"),
            Event::AcceptOther => metrics::accept_failed("other"),
        }
        let now_ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let Some(suppressed) = self.throttles[event as usize].allow(now_ms) else {
            return;
        };
        let open = self.open.load(Ordering::Relaxed);
        let l = &self.limits;
        let (max, reserved) = (l.max_connections, l.reserved_connections);
        let error = error.map(ToString::to_string).unwrap_or_default();
        match event {
            Event::OverCapacity => tracing::warn!(
                open, max, reserved, suppressed,
                "connection limit reached: the normal connections and the ops reserve are all in use, new connections are closed at once; if this is real traffic raise server.max_connections"
            ),
            Event::Evicted => tracing::warn!(
                open, max, reserved, suppressed,
                "connection limit reached: the ops reserve was full of connections that had sent nothing; the oldest was closed to make room"
            ),
            Event::ReservedForOps => tracing::warn!(
                open, max, reserved, suppressed,
                "connection limit reached: requests other than /healthz, /readyz and /metrics get 503 until connections free up"
            ),
            Event::HeaderTimeout => tracing::info!(
                open, seconds = l.header_read.as_secs(), suppressed,
                "closed a connection that sent no whole request head within server.header_read_timeout_seconds"
            ),
            Event::IdleTimeout => tracing::debug!(
                open, seconds = l.keep_alive_idle.as_secs(), suppressed,
                "closed a kept-alive connection idle for server.keep_alive_idle_seconds"
            ),
            Event::Stalled => tracing::info!(
                open, seconds = l.stall.as_secs(), suppressed,
                "closed a connection whose request moved no byte for request_timeout_seconds + keep_alive_idle_seconds"
            ),
            Event::AcceptFileLimit => tracing::error!(
                open, %error, suppressed,
                "cannot accept connections: the process is out of file descriptors; pausing briefly. Lower server.max_connections or raise the open-file limit"
            ),
            Event::AcceptOther => tracing::error!(%error, suppressed, "accepting a connection failed"),
        }
    }

    async fn on_accept_error(&self, e: io::Error) {
        // The client gave up before we took its connection: nothing wrong here.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionRefused
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
        ) {
            return;
        }
        if matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
            self.record_with(Event::AcceptFileLimit, Some(&e));
            tokio::time::sleep(FILE_LIMIT_PAUSE).await;
        } else {
            // As hyper and axum do: an unknown accept error may repeat at once.
            self.record_with(Event::AcceptOther, Some(&e));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One open connection in the gauge, until dropped.
struct OpenConnection(Arc<Shared>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::connections_open(-1.0);
    }
}

/// Lets one event through per period and counts the ones it held back.
struct Throttle {
    every_ms: u64,
    /// When the last one was let through, plus one (0: never).
    last_ms: AtomicU64,
    held_back: AtomicU64,
}

impl Throttle {
    fn new(every: Duration) -> Self {
        Self {
            every_ms: u64::try_from(every.as_millis()).unwrap_or(u64::MAX),
            last_ms: AtomicU64::new(0),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(held back since the last one)` when this one may be logged.
    fn allow(&self, now_ms: u64) -> Option<u64> {
        let stamp = now_ms.saturating_add(1);
        let last = self.last_ms.load(Ordering::Acquire);
        let due = last == 0 || stamp >= last.saturating_add(self.every_ms);
        if due
            && self
                .last_ms
                .compare_exchange(last, stamp, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Some(self.held_back.swap(0, Ordering::AcqRel));
        }
        self.held_back.fetch_add(1, Ordering::AcqRel);
        None
    }
}

/// Raises the soft open-file limit to the hard one (each connection is a descriptor;
/// distributions often start services with a soft limit of 1024) and returns the
/// limits to serve with: when the configured ones do not fit under the file limit they
/// are lowered, so the connection cap and its reserve bite before the process runs out
/// of descriptors (when nothing, not even a health check, can be accepted).
pub fn raise_file_limit(limits: ConnectionLimits) -> ConnectionLimits {
    let (before, hard) = match rlimit::Resource::NOFILE.get() {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit (RLIMIT_NOFILE)");
            return limits;
        }
    };
    let soft = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => soft,
        Err(e) => {
            tracing::warn!(error = %e, soft = before, hard, "cannot raise the open-file limit (RLIMIT_NOFILE) to the hard limit");
            before
        }
    };
    if soft > before {
        tracing::info!(
            before,
            soft,
            hard,
            "open-file limit (RLIMIT_NOFILE): soft limit raised to the hard limit"
        );
    } else {
        tracing::info!(
            soft,
            hard,
            "open-file limit (RLIMIT_NOFILE) already at its hard limit"
        );
    }
    let fitted = fit_under(limits, soft);
    if fitted.max_connections != limits.max_connections
        || fitted.reserved_connections != limits.reserved_connections
    {
        tracing::warn!(
            soft,
            hard,
            configured_max = limits.max_connections,
            configured_reserved = limits.reserved_connections,
            max_connections = fitted.max_connections,
            reserved_connections = fitted.reserved_connections,
            "server.max_connections + reserved_connections do not fit under the open-file limit with room for the hub's other files: max_connections lowered for this run. Raise the hard limit (systemd LimitNOFILE=, docker --ulimit nofile=) or lower server.max_connections"
        );
    }
    fitted
}

/// The limits lowered, if needed, to fit under `soft` descriptors with room for the
/// hub's other files (up to [`OTHER_FILES`], at most half of a small limit).
fn fit_under(mut limits: ConnectionLimits, soft: u64) -> ConnectionLimits {
    let other = OTHER_FILES.min(soft / 2);
    let room = usize::try_from(soft.saturating_sub(other)).unwrap_or(usize::MAX);
    if limits
        .max_connections
        .saturating_add(limits.reserved_connections)
        <= room
    {
        return limits;
    }
    limits.reserved_connections = limits.reserved_connections.min(room / 4).max(1);
    limits.max_connections = room.saturating_sub(limits.reserved_connections).max(1);
    limits
}

/// Serves `router` on `listener` under `limits` until `signal` resolves, then stops
/// accepting and waits for the connections to finish (idle ones close at once).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    signal: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let shared = Arc::new(Shared::new(limits));
    let gate = Gate::new(limits.max_connections, limits.reserved_connections);
    metrics::connections_max(limits.max_connections);
    metrics::connections_open(0.0);
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(signal);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    shared.on_accept_error(e).await;
                    continue;
                }
            },
        };
        let (normal, reserve) = match gate.admit() {
            Admission::Normal(slot) => (Some(slot), None),
            Admission::Reserve {
                slot,
                evicted_other,
            } => {
                if evicted_other {
                    shared.record(Event::Evicted);
                }
                (None, Some(slot))
            }
            Admission::Refused => {
                // Accepted and closed at once, so the backlog drains and clients learn
                // now rather than at their connect timeout.
                shared.record(Event::OverCapacity);
                drop(stream);
                continue;
            }
        };
        let open = shared.opened();
        let task = serve_connection(
            stream,
            remote,
            router.clone(),
            shared.clone(),
            reserve,
            stop_rx.clone(),
        );
        tokio::spawn(async move {
            task.await;
            drop((normal, open));
        });
    }
    drop(listener);
    // Connections see the change and shut down gracefully; each holds a receiver, so
    // `closed` resolves when the last one has finished.
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_throttle_lets_one_through_per_period_and_counts_the_rest() {
        let t = Throttle::new(Duration::from_secs(10));
        assert_eq!(t.allow(0), Some(0));
        assert_eq!(t.allow(1), None);
        assert_eq!(t.allow(9_999), None);
        assert_eq!(t.allow(10_000), Some(2));
        assert_eq!(t.allow(10_001), None);
        assert_eq!(t.allow(25_000), Some(1));
    }

    #[test]
    fn limits_are_lowered_to_fit_under_the_file_limit() {
        let configured = ConnectionLimits::from_config(&ServerConfig::default());
        let fit = |soft| {
            let l = fit_under(configured, soft);
            (l.max_connections, l.reserved_connections)
        };
        assert_eq!(fit(1_048_576), (4096, 32), "room to spare: unchanged");
        assert_eq!(fit(4096 + 32 + 256), (4096, 32), "just fits");
        assert_eq!(fit(1024), (768 - 32, 32));
        assert_eq!(fit(256), (128 - 32, 32));
        assert_eq!(
            fit(64),
            (32 - 8, 8),
            "a small limit keeps half for other files"
        );
        assert_eq!(fit(2), (1, 1));
    }

    #[test]
    fn limits_come_from_the_server_section() {
        let l = ConnectionLimits::from_config(&ServerConfig::default());
        assert_eq!(l.header_read, Duration::from_secs(10));
        assert_eq!(l.keep_alive_idle, Duration::from_secs(75));
        assert_eq!(l.stall, Duration::from_secs(30 + 75));
        assert_eq!((l.max_connections, l.reserved_connections), (4096, 32));
    }
}
