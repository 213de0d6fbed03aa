//! One probe against real targets: each way a site can fail gets its error kind, slow is
//! degraded, and blocked addresses are never connected to.

use std::time::Duration;

use chrono::Utc;
use helpdesk_domain::egress::EgressPolicy;
use helpdesk_domain::monitoring::probe_state::{ErrorKind, Outcome};
use helpdesk_domain::monitoring::settings::Keyword;
use helpdesk_domain::monitoring::status::KeywordMode;
use helpdesk_worker::egress::{EgressClient, EgressOptions};
use helpdesk_worker::monitoring::probe::{ProbeTarget, probe};

use crate::targets::{KEYWORD, Mode, Target};

fn loopback_allowed() -> EgressClient {
    EgressClient::new(EgressPolicy::parse("127.0.0.0/8").unwrap(), &EgressOptions::default()).unwrap()
}

fn target(url: String) -> ProbeTarget {
    ProbeTarget {
        url,
        expected_statuses: vec![200],
        keyword: Some(Keyword { text: KEYWORD.to_owned(), mode: KeywordMode::Present }),
        latency_threshold: Some(Duration::from_millis(300)),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn each_failure_has_its_kind_and_slow_is_degraded() {
    let client = loopback_allowed();
    let site = Target::start(Mode::Up).await;
    let spec = target(site.url());
    let check = || probe(&client, &spec, Utc::now());

    let up = check().await;
    assert_eq!(up.outcome, Outcome::Up, "{up:?}");
    assert_eq!(up.status, Some(200));

    site.set(Mode::Status(503));
    let down = check().await;
    assert_eq!(down.outcome, Outcome::Down(ErrorKind::Status));
    assert_eq!(down.status, Some(503));

    site.set(Mode::WrongKeyword);
    assert_eq!(check().await.outcome, Outcome::Down(ErrorKind::Keyword));

    site.set(Mode::Slow(Duration::from_millis(600)));
    let slow = check().await;
    assert_eq!(slow.outcome, Outcome::Degraded, "{slow:?}");
    assert!(slow.latency >= Duration::from_millis(600));

    site.set(Mode::Slow(Duration::from_secs(5)));
    assert_eq!(check().await.outcome, Outcome::Down(ErrorKind::Timeout));

    site.set(Mode::Refused);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = check().await;
    assert_eq!(refused.outcome, Outcome::Down(ErrorKind::Connect), "{refused:?}");

    site.set(Mode::Up);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(check().await.outcome, Outcome::Up);

    let mut absent = target(site.url());
    absent.keyword = Some(Keyword { text: KEYWORD.to_owned(), mode: KeywordMode::Absent });
    assert_eq!(probe(&client, &absent, Utc::now()).await.outcome, Outcome::Down(ErrorKind::Keyword));

    let unknown = probe(&client, &target("http://no-such-host.invalid/".to_owned()), Utc::now()).await;
    assert_eq!(unknown.outcome, Outcome::Down(ErrorKind::Dns), "{unknown:?}");
}

#[tokio::test]
async fn blocked_urls_are_refused_before_connecting() {
    let victim = Target::start(Mode::Up).await;
    // Only the redirector's address is allowed.
    let redirector = Target::start_on([127, 0, 0, 2], Mode::Redirect(victim.url())).await;
    let client = EgressClient::new(EgressPolicy::parse("127.0.0.2/32").unwrap(), &EgressOptions::default()).unwrap();
    let port = victim.address.port();
    for url in [
        victim.url(),
        redirector.url(),
        format!("http://localhost:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let result = probe(&client, &target(url.clone()), Utc::now()).await;
        assert_eq!(result.outcome, Outcome::Down(ErrorKind::Blocked), "{url}: {result:?}");
    }
    assert_eq!(victim.connections(), 0);
    assert_eq!(redirector.connections(), 1, "the allowed redirector was reached once");
}
