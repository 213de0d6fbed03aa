//! The probe-time SSRF guard against a real listener, the storm guard and the self-check.

use chrono::TimeDelta;
use std::time::Duration;

use crate::monitoring_support::{watch, weekday_morning};
use crate::targets::{Mode, Target};

#[tokio::test]
async fn blocked_monitor_urls_never_reach_a_loopback_listener() {
    let start = weekday_morning();
    // Only the redirector's address is allowed; 127.0.0.1 is not.
    let watch = watch(start, &[("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.2/32".to_owned())], |_| {}).await;
    let victim = Target::start(Mode::Up).await;
    let redirector = Target::start_on([127, 0, 0, 2], Mode::Redirect(victim.url())).await;
    let port = victim.address.port();
    // Written straight into the table: the API's creation check is not what is tested here.
    let urls = [
        victim.url(),
        redirector.url(),
        format!("http://localhost:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ];
    let mut monitors = Vec::new();
    for url in &urls {
        monitors.push(watch.monitor(url).await);
    }
    watch.advance_to(start + TimeDelta::minutes(2)).await;
    for (monitor, url) in monitors.iter().zip(&urls) {
        let kind = sqlx::query_scalar!("SELECT last_check_error_kind FROM monitors WHERE id = $1", monitor)
            .fetch_one(&watch.app.pool)
            .await
            .unwrap();
        assert_eq!(kind.as_deref(), Some("blocked"), "{url}");
    }
    assert_eq!(victim.connections(), 0, "the loopback listener was never reached");
    assert!(redirector.connections() >= 1, "the allowed redirector was");
    watch.app.finish().await;
}

#[tokio::test]
async fn a_storm_with_the_canary_down_sends_one_connectivity_alert_and_no_tickets() {
    let start = weekday_morning();
    let canary = Target::start(Mode::Status(503)).await;
    let watch = watch(start, &[("HELPDESK_PROBE_CANARY_URL", canary.url())], |settings| {
        settings.probes.storm_min_probes = 5;
    })
    .await;
    let site = Target::start(Mode::Refused).await;
    let mut monitors = Vec::new();
    for _ in 0..6 {
        monitors.push(watch.monitor(&site.url()).await);
    }
    watch.advance_to(start + TimeDelta::hours(2) + TimeDelta::minutes(10)).await;
    assert_eq!(watch.count_template("probe_network_problem").await, 1, "one alert to the one agent");
    assert_eq!(watch.count_template("monitor_alert").await, 0, "no per-site alerts");
    assert_eq!(watch.count_template("monitor_page").await, 0);
    assert_eq!(watch.monitoring_tickets().await, 0, "no tickets");
    for monitor in &monitors {
        let incidents = watch.incidents(*monitor).await;
        assert_eq!(incidents.len(), 1, "incidents are still recorded");
        assert!(incidents[0].in_storm);
    }
    assert!(canary.connections() >= 1);
    watch.app.finish().await;
}

#[tokio::test]
async fn a_monitor_two_intervals_without_a_check_alerts_the_agents_once() {
    let start = weekday_morning();
    let watch = watch(start, &[], |settings| {
        settings.probes.upkeep_interval = Duration::from_secs(1);
    })
    .await;
    // Due only tomorrow: nothing probes it meanwhile, as if probing were stuck.
    let stuck = watch.monitor_due("http://127.0.0.1:9/", start + TimeDelta::days(1)).await;
    watch.app.clock.set(start + TimeDelta::minutes(11));
    let mut sent = 0;
    for _ in 0..200 {
        sent = watch.count_template("monitor_overdue").await;
        if sent > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 1);
    watch.app.clock.set(start + TimeDelta::minutes(30));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(watch.count_template("monitor_overdue").await, 1, "deduplicated while it stays overdue");
    let _ = stuck;
    watch.app.finish().await;
}
