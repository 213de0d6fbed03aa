//! The reconciler's schedule when a round outlasts its interval, registered as production does
//! (apalis-cron, `EveryInterval`, `OneAtATime`, a monitor that restarts stopped workers).
//! apalis-cron 1.0 answers a next tick that is already past when it is polled with "cron tick is
//! out of range", a backend error that stops the worker. The schedule must keep firing through a
//! long round without that and without a restart, and ticks during the round must not start a
//! second round beside it.

use apalis::prelude::{Data, Monitor, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use chrono::Utc;
use helpdesk_worker::reconcile::{EveryInterval, OneAtATime};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
struct Rounds {
    one_at_a_time: OneAtATime,
    ticks: Arc<AtomicUsize>,
    started: Arc<Mutex<Vec<Instant>>>,
}

/// The first round takes 2.5 intervals; the others are instant.
async fn round(_tick: Tick<Utc>, rounds: Data<Rounds>) -> Result<(), std::io::Error> {
    rounds.ticks.fetch_add(1, Ordering::SeqCst);
    let Some(_round) = rounds.one_at_a_time.try_start() else { return Ok(()) };
    let first = {
        let mut started = rounds.started.lock().unwrap();
        started.push(Instant::now());
        started.len() == 1
    };
    if first {
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_longer_than_its_interval_does_not_stop_the_schedule() {
    let rounds = Rounds::default();
    let restarts = Arc::new(AtomicUsize::new(0));
    let (data, counted) = (rounds.clone(), restarts.clone());
    let monitor = Monitor::new()
        .register(move |_| {
            WorkerBuilder::new("schedule-test")
                .backend(CronScheduler::new(EveryInterval::new(Duration::from_secs(1))))
                .data(data.clone())
                .build(round)
        })
        // As in production: a stopped worker is restarted. Counted, since it must not be needed.
        .should_restart(move |_, _| {
            counted.fetch_add(1, Ordering::SeqCst);
            true
        });
    let started = Instant::now();
    let run = tokio::spawn(monitor.run_with_signal(async {
        tokio::time::sleep(Duration::from_secs(8)).await;
        Ok(())
    }));

    // The long round ends about 3.5 s in; rounds then come every second again.
    let deadline = started + Duration::from_secs(8);
    while rounds.started.lock().unwrap().len() < 4 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fired = rounds.started.lock().unwrap().clone();
    run.abort();
    assert!(fired.len() >= 4, "only {} rounds in 8 s after a long one: the schedule stopped", fired.len());
    let after_long = fired.iter().skip(1).map(|at| at.duration_since(fired[0])).collect::<Vec<_>>();
    assert!(after_long[0] >= Duration::from_millis(2400), "a round started beside the long one: {after_long:?}");
    let ticks = rounds.ticks.load(Ordering::SeqCst);
    assert!(
        ticks >= fired.len() + 2,
        "the ticks during the long round ({ticks} ticks, {} rounds) were not skipped",
        fired.len()
    );
    assert_eq!(restarts.load(Ordering::SeqCst), 0, "the schedule kept firing only by restarting its worker");
}
