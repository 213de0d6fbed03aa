//! How an idle consumer looks for jobs: every `interval`.
//!
//! apalis-core 1.0's `IntervalStrategy` (what `poll_with_interval` installs) replaces its timer when
//! it fires without polling the new one, so the new timer never holds the consumer's waker: after
//! its first tick it wakes an idle consumer no more, and the consumer looks for jobs only when
//! something else wakes it, such as its heartbeat. That is why a freshly started worker was seen
//! idle for a heartbeat while jobs waited (30 s with apalis's default heartbeat, and a replica
//! that took no jobs at all in a short test). [`Every`] arms the next timer and polls it at once.

use apalis_core::backend::ext::poll_strategy::{PollSnapshot, PollStrategy};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

pub struct Every {
    interval: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Every {
    pub fn new(interval: Duration) -> Self {
        Self { interval: interval.max(Duration::from_millis(1)), timer: None }
    }
}

impl PollStrategy for Every {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut fired = false;
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
