//! Who gets a newly accepted connection: the normal band (`server.max_connections`),
//! the ops reserve (`server.reserved_connections`: probes and scrapes only), or nobody.
//!
//! A reserve slot held by a connection that has sent no request yet can be taken by a
//! newer connection: the oldest such one is closed. Otherwise a flood of silent sockets
//! would keep the reserve full until the header timeout, and the health checks it is
//! there for would be turned away with everyone else. A health check sends its request
//! at once, so it is served before enough newer connections arrive to push it out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::Notify;

pub(super) struct Gate {
    max: usize,
    normal: AtomicUsize,
    reserve: Mutex<Reserve>,
}

struct Reserve {
    capacity: usize,
    /// Reserve connections whose request has arrived (they are not evicted).
    serving: usize,
    /// Reserve connections that have sent no request yet, oldest first.
    waiting: VecDeque<(u64, Arc<Notify>)>,
    /// Evicted connections whose task has not closed the socket yet: each still holds
    /// a file descriptor, so at most [`MAX_CLOSING`] may be in flight (under a flood on
    /// a busy machine the evicted tasks lag behind the accept loop, and unbounded
    /// they ran the hub out of descriptors).
    closing: usize,
    next_id: u64,
}

/// See `Reserve::closing`; past it a newcomer is refused (closed at once) instead.
const MAX_CLOSING: usize = 8;

pub(super) enum Admission {
    Normal(NormalSlot),
    /// `evicted_other`: an older silent reserve connection was closed to make room.
    Reserve {
        slot: Arc<ReserveSlot>,
        evicted_other: bool,
    },
    Refused,
}

/// Frees its place in the normal band when dropped.
pub(super) struct NormalSlot(Arc<Gate>);

impl Drop for NormalSlot {
    fn drop(&mut self) {
        self.0.normal.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A place in the reserve, freed when dropped.
pub(super) struct ReserveSlot {
    gate: Arc<Gate>,
    id: u64,
    evict: Arc<Notify>,
    serving: AtomicBool,
}

impl Gate {
    pub(super) fn new(max: usize, reserved: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            normal: AtomicUsize::new(0),
            reserve: Mutex::new(Reserve {
                capacity: reserved,
                serving: 0,
                waiting: VecDeque::new(),
                closing: 0,
                next_id: 0,
            }),
        })
    }

    pub(super) fn admit(self: &Arc<Self>) -> Admission {
        if self.normal.fetch_add(1, Ordering::AcqRel) < self.max {
            return Admission::Normal(NormalSlot(self.clone()));
        }
        self.normal.fetch_sub(1, Ordering::AcqRel);
        let mut r = self.lock();
        let evicted_other = if r.serving + r.waiting.len() < r.capacity {
            false
        } else if r.closing >= MAX_CLOSING {
            return Admission::Refused;
        } else if let Some((_, oldest)) = r.waiting.pop_front() {
            oldest.notify_one();
            r.closing += 1;
            true
        } else {
            return Admission::Refused;
        };
        let id = r.next_id;
        r.next_id = r.next_id.wrapping_add(1);
        let evict = Arc::new(Notify::new());
        r.waiting.push_back((id, evict.clone()));
        drop(r);
        Admission::Reserve {
            slot: Arc::new(ReserveSlot {
                gate: self.clone(),
                id,
                evict,
                serving: AtomicBool::new(false),
            }),
            evicted_other,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Reserve> {
        // The counts stay consistent even if a holder panicked (nothing panics while
        // holding it), so a poisoned lock is used as it is.
        self.reserve.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReserveSlot {
    /// The connection's request has arrived: from now on it is not evicted. False when
    /// it was evicted just before (the connection is being closed).
    pub(super) fn begin_serving(&self) -> bool {
        if self.serving.load(Ordering::Acquire) {
            return true;
        }
        let mut r = self.gate.lock();
        let Some(at) = r.waiting.iter().position(|(id, _)| *id == self.id) else {
            return false;
        };
        r.waiting.remove(at);
        r.serving += 1;
        self.serving.store(true, Ordering::Release);
        true
    }

    /// Resolves when a newer connection took this slot.
    pub(super) async fn evicted(&self) {
        self.evict.notified().await;
    }
}

impl Drop for ReserveSlot {
    fn drop(&mut self) {
        let mut r = self.gate.lock();
        if self.serving.load(Ordering::Acquire) {
            r.serving = r.serving.saturating_sub(1);
        } else if let Some(at) = r.waiting.iter().position(|(id, _)| *id == self.id) {
            r.waiting.remove(at);
        } else {
            // Neither serving nor waiting: it was evicted, and its socket closes now.
            r.closing = r.closing.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn band(a: &Admission) -> &'static str {
        match a {
            Admission::Normal(_) => "normal",
            Admission::Reserve {
                evicted_other: false,
                ..
            } => "reserve",
            Admission::Reserve {
                evicted_other: true,
                ..
            } => "reserve, evicting",
            Admission::Refused => "refused",
        }
    }

    fn slot(a: &Admission) -> Arc<ReserveSlot> {
        match a {
            Admission::Reserve { slot, .. } => slot.clone(),
            _ => panic!("not a reserve admission"),
        }
    }

    #[test]
    fn normal_band_then_reserve_then_the_oldest_silent_reserve_connection_is_evicted() {
        let gate = Gate::new(2, 2);
        let a: Vec<Admission> = (0..4).map(|_| gate.admit()).collect();
        let bands: Vec<_> = a.iter().map(band).collect();
        assert_eq!(bands, ["normal", "normal", "reserve", "reserve"]);
        // Both reserve slots hold silent connections: the fifth takes the oldest one's.
        let fifth = gate.admit();
        assert_eq!(band(&fifth), "reserve, evicting");
        assert!(!slot(&a[2]).begin_serving(), "the evicted one cannot start");
        assert!(slot(&a[3]).begin_serving());
        assert!(slot(&fifth).begin_serving());
        // Both reserve slots are serving requests now: nothing to evict.
        assert_eq!(band(&gate.admit()), "refused");
        drop(fifth);
        assert_eq!(band(&gate.admit()), "reserve");
    }

    #[test]
    fn freed_slots_are_given_again() {
        let gate = Gate::new(1, 1);
        let first = gate.admit();
        let second = gate.admit();
        assert!(slot(&second).begin_serving());
        assert_eq!(band(&gate.admit()), "refused");
        drop(first);
        assert_eq!(band(&gate.admit()), "normal");
        drop(second);
        let r = gate.lock();
        assert_eq!((r.serving, r.waiting.len()), (0, 0));
    }

    #[test]
    fn a_slot_dropped_while_waiting_leaves_no_trace() {
        let gate = Gate::new(0, 3);
        let slots: Vec<_> = (0..3).map(|_| gate.admit()).collect();
        drop(slots);
        let r = gate.lock();
        assert_eq!((r.serving, r.waiting.len()), (0, 0));
    }

    #[tokio::test]
    async fn eviction_wakes_the_evicted_connection() {
        let gate = Gate::new(0, 1);
        let first = slot(&gate.admit());
        let _second = gate.admit();
        tokio::time::timeout(Duration::from_secs(5), first.evicted())
            .await
            .unwrap();
    }

    #[test]
    fn evictions_still_closing_are_bounded() {
        let gate = Gate::new(0, 1);
        let mut held = vec![gate.admit()];
        for _ in 0..MAX_CLOSING {
            let a = gate.admit();
            assert_eq!(band(&a), "reserve, evicting");
            held.push(a);
        }
        // Eight evicted connections have not closed their sockets yet: the next
        // newcomer is closed at once rather than holding one more descriptor.
        assert_eq!(band(&gate.admit()), "refused");
        held.remove(0);
        assert_eq!(
            band(&gate.admit()),
            "reserve, evicting",
            "one closed, one may go"
        );
    }
}
