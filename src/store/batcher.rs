//! Requests answered in groups by one worker (group commit, grouped reads).
//!
//! Callers on many tasks each send one request and wait; the worker takes every
//! request waiting (up to a limit) and answers them with one round of database
//! work. Under load the groups grow by themselves: while one group is in the
//! database, the next one gathers. Each request is still answered by work that
//! started after it was sent.
//!
//! The worker runs on a thread of its own with a single-threaded runtime: on the
//! shared runtime its wake-ups queued behind the very requests it serves, and that
//! queueing, not the database, set the pace (measured: 2–5 ms per group of refresh
//! rotations instead of a fraction of one; see BENCHMARKS.md).

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::StoreError;

type Job<Req, Resp> = (Req, oneshot::Sender<Result<Resp, StoreError>>);

/// The handle callers use; the worker thread ends when the last handle is dropped.
pub struct Batcher<Req, Resp> {
    name: &'static str,
    queue: mpsc::Sender<Job<Req, Resp>>,
}

impl<Req, Resp> Clone for Batcher<Req, Resp> {
    fn clone(&self) -> Self {
        Batcher {
            name: self.name,
            queue: self.queue.clone(),
        }
    }
}

impl<Req, Resp> std::fmt::Debug for Batcher<Req, Resp> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batcher({})", self.name)
    }
}

impl<Req: Send + 'static, Resp: Send + 'static> Batcher<Req, Resp> {
    /// Starts the worker thread `name`. `handle` gets up to `max_batch` requests and
    /// returns one answer per request, in order, or one error for all of them.
    pub fn start<F, Fut>(name: &'static str, max_batch: usize, handle: F) -> std::io::Result<Self>
    where
        F: FnMut(Vec<Req>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<Resp>, StoreError>> + Send,
    {
        let (queue, jobs) = mpsc::channel(4 * max_batch);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || runtime.block_on(run(name, max_batch, jobs, handle)))?;
        Ok(Batcher { name, queue })
    }

    /// Sends one request and waits for its answer.
    pub async fn call(&self, request: Req) -> Result<Resp, StoreError> {
        let stopped = || StoreError::Worker(format!("the {} worker has stopped", self.name));
        let (done, wait) = oneshot::channel();
        self.queue
            .send((request, done))
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

async fn run<Req, Resp, F, Fut>(
    name: &'static str,
    max_batch: usize,
    mut queue: mpsc::Receiver<Job<Req, Resp>>,
    mut handle: F,
) where
    F: FnMut(Vec<Req>) -> Fut,
    Fut: Future<Output = Result<Vec<Resp>, StoreError>>,
{
    let mut jobs = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut jobs, max_batch).await > 0 {
        let (requests, replies): (Vec<Req>, Vec<_>) = jobs.drain(..).unzip();
        let n = replies.len();
        match handle(requests).await {
            Ok(answers) if answers.len() == n => {
                for (done, answer) in replies.into_iter().zip(answers) {
                    let _ = done.send(Ok(answer));
                }
            }
            result => {
                // One failure answers every request of the group; a transient one
                // (disk full, database down) stays transient for each of them.
                let (reason, msg) = match result {
                    Err(StoreError::Unavailable { reason, detail }) => (Some(reason), detail),
                    Err(e) => (None, e.to_string()),
                    Ok(a) => (None, format!("{} answers for {n} requests", a.len())),
                };
                if reason.is_none() {
                    tracing::error!(worker = name, requests = n, error = %msg, "batch failed");
                }
                for done in replies {
                    let e = match reason {
                        Some(reason) => StoreError::Unavailable {
                            reason,
                            detail: msg.clone(),
                        },
                        None => StoreError::Worker(msg.clone()),
                    };
                    let _ = done.send(Err(e));
                }
            }
        }
    }
}
