//! How an idle consumer looks for jobs: every `interval`.
//!
//! apalis-core 1.0's `IntervalStrategy` (what `poll_with_interval` installs) replaces its timer when
//! it fires without polling the new one, so the new timer never holds the consumer's waker: after
//! its first tick it wakes an idle consumer no more, and the consumer looks for jobs only when
//! something else wakes it, such as its heartbeat. That is why a freshly started worker was seen
//! idle for a heartbeat while jobs waited (30 s with apalis's default heartbeat, and a replica
//! that took no jobs at all in a short test). [`Every`] arms the next timer and polls it at once.
//!
//! **Nudges.** apalis fetches again at once while fetches return jobs, and waits for the next tick
//! only after one comes back empty. A job this process pushes a moment after such an empty fetch
//! (the LISTEN tasks queue e-mails and webhook runs as commits announce them) would wait up to a
//! whole interval (1 s in production). A [`Nudge`] lets the code that pushed wake its own
//! process's consumer at once; other replicas still find the jobs on their next tick.

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use futures_util::task::AtomicWaker;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

/// Wakes one queue's consumer in this process now rather than at its next tick. Cheap to clone;
/// a nudge while the consumer is busy is kept until it next looks for jobs.
#[derive(Clone, Default)]
pub struct Nudge(Arc<NudgeState>);

#[derive(Default)]
struct NudgeState {
    pending: AtomicBool,
    consumer: AtomicWaker,
}

impl Nudge {
    pub fn signal(&self) {
        self.0.pending.store(true, Ordering::Release);
        self.0.consumer.wake();
    }

    /// Registers the consumer's waker; true when a nudge came since the last call.
    fn take(&self, cx: &Context<'_>) -> bool {
        self.0.consumer.register(cx.waker());
        self.0.pending.swap(false, Ordering::AcqRel)
    }
}

/// This process's nudges, one per queue name.
#[derive(Clone, Default)]
pub struct Nudges(Arc<Mutex<HashMap<&'static str, Nudge>>>);

impl Nudges {
    pub fn of(&self, queue: &'static str) -> Nudge {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(queue).or_default().clone()
    }
}

pub struct Every {
    interval: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    nudge: Option<Nudge>,
}

impl Every {
    pub fn new(interval: Duration) -> Self {
        Self { interval: interval.max(Duration::from_millis(1)), timer: None, nudge: None }
    }

    /// Also wakes the consumer whenever `nudge` is signalled.
    pub fn nudged_by(mut self, nudge: Nudge) -> Self {
        self.nudge = Some(nudge);
        self
    }
}

impl PollStrategy for Every {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = self.nudge.as_ref().is_some_and(|nudge| nudge.take(cx));
        loop {
            let interval = self.interval;
            let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(interval)));
            match timer.as_mut().poll(cx) {
                // Fired: replace it and loop, so the new timer is polled and holds the waker.
                Poll::Ready(()) => {
                    self.timer = None;
                    fired = true;
                }
                Poll::Pending => return if fired { Poll::Ready(Some(())) } else { Poll::Pending },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn a_nudge_wakes_an_idle_consumer_long_before_its_tick() {
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let nudge = Nudge::default();
        let mut strategy = Every::new(Duration::from_secs(3600)).nudged_by(nudge.clone());
        assert!(strategy.poll_drive(&mut cx, &PollSnapshot::default()).is_pending());
        nudge.signal();
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "woken at once");
        assert!(strategy.poll_drive(&mut cx, &PollSnapshot::default()).is_ready());
        // Consumed: the next look waits again.
        assert!(strategy.poll_drive(&mut cx, &PollSnapshot::default()).is_pending());
        // A nudge while the consumer is busy (not looking) is kept for its next look.
        nudge.signal();
        nudge.signal();
        assert!(strategy.poll_drive(&mut cx, &PollSnapshot::default()).is_ready());
        assert!(strategy.poll_drive(&mut cx, &PollSnapshot::default()).is_pending());
    }

    #[tokio::test]
    async fn an_idle_consumer_is_woken_on_every_interval_not_just_the_first() {
        let wakes = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut strategy = Every::new(Duration::from_millis(20));
        for tick in 1..=4 {
            // The consumer polls once, finds nothing and parks; only the strategy can wake it.
            let _ = strategy.poll_drive(&mut cx, &PollSnapshot::default());
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while wakes.0.load(Ordering::SeqCst) < tick {
                assert!(tokio::time::Instant::now() < deadline, "not woken for tick {tick}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}
