//! The TLS expiry warning end to end (R11): an https target whose certificate, from a private CA
//! the worker trusts through `HELPDESK_EGRESS_CA_FILE`, expires within the warning period. One
//! warning, never a downtime; a renewal resolves it.

use chrono::{TimeDelta, Utc};

use crate::monitoring_support::{watch, weekday_morning};
use crate::tls_targets::{TestCa, TlsTarget, expiry_of};

#[tokio::test]
async fn an_expiring_certificate_warns_once_without_a_downtime_and_a_renewal_resolves_it() {
    let ca = TestCa::new();
    // The test clock starts 1 to 8 days ahead of the wall clock, so this is under 10 days away.
    let expires = Utc::now() + TimeDelta::days(10);
    let site = TlsTarget::start(ca.server(expires)).await;
    let start = weekday_morning();
    let watch = watch(start, &[("HELPDESK_EGRESS_CA_FILE", ca.write_pem())], |_| {}).await;
    let monitor = watch.monitor(&site.url()).await;
    watch.advance_to(start + TimeDelta::minutes(30)).await;

    let seen = sqlx::query!("SELECT state, tls_expires_at, tls_incident_id FROM monitors WHERE id = $1", monitor)
        .fetch_one(&watch.app.pool)
        .await
        .unwrap();
    assert_eq!(seen.state, "up", "an expiring certificate is not a downtime");
    assert_eq!(seen.tls_expires_at, Some(expiry_of(expires)));
    assert_eq!(watch.alert_kinds(monitor).await, ["tls_expiring"], "one warning over seven probes");
    let incidents =
        sqlx::query!("SELECT id, kind, resolved_at FROM incidents WHERE monitor_id = $1 ORDER BY started_at", monitor)
            .fetch_all(&watch.app.pool)
            .await
            .unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!((incidents[0].kind.as_str(), incidents[0].resolved_at), ("tls_expiring", None));
    assert_eq!(seen.tls_incident_id, Some(incidents[0].id));
    let warnings = watch.emails("monitor_alert", monitor).await;
    assert!(warnings.len() >= 2, "the agents and the organisation's customers: {warnings:?}");
    for warning in &warnings {
        assert_eq!(warning["kind"], "tls_expiring");
        let detail = warning["detail"].as_str().unwrap();
        assert!(detail.contains("America/Sao_Paulo"), "the expiry names its zone: {detail}");
    }
    let uptime = sqlx::query_scalar!("SELECT count(*) FROM incidents WHERE monitor_id = $1 AND kind = 'down'", monitor)
        .fetch_one(&watch.app.pool)
        .await
        .unwrap();
    assert_eq!(uptime, Some(0), "nothing counts against uptime");

    site.renew(ca.server(Utc::now() + TimeDelta::days(90)));
    watch.advance(TimeDelta::minutes(5)).await;
    let resolved = sqlx::query!(
        "SELECT i.resolved_at, m.tls_incident_id FROM incidents i JOIN monitors m ON m.id = i.monitor_id WHERE i.id = $1",
        incidents[0].id
    )
    .fetch_one(&watch.app.pool)
    .await
    .unwrap();
    assert!(resolved.resolved_at.is_some(), "the renewal resolves the warning");
    assert_eq!(resolved.tls_incident_id, None);
    assert_eq!(watch.alert_kinds(monitor).await, ["tls_expiring"], "and sends nothing");
    assert_eq!(watch.emails("monitor_alert", monitor).await.len(), warnings.len());
    watch.app.finish().await;
}
