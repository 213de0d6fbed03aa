//! The real `helpdesk-worker` binary killed with SIGKILL while a webhook delivery is in flight
//! (issue 13): the receiver holds the request, so the worker dies before it can know the answer.
//! A new process delivers everything, in order, with nothing lost, and the one delivery that
//! arrived twice carries the same `webhook-id` both times.

use chrono::Utc;
use helpdesk_core::accounts::Caller;
use helpdesk_core::webhook_events;
use helpdesk_core::webhooks::{NewSubscription, subscriptions};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::egress::EgressPolicy;
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

use crate::helpers::{drop_database, in_tx, redis_url};
use crate::resilience::{database, spawn_worker, wait_until, worker_env};
use crate::smtp_server::SmtpServer;
use crate::webhook_receiver::Receiver;
use crate::webhooks::{delivery_order, first_arrivals, incident};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_loses_nothing_and_the_resend_keeps_its_webhook_id() {
    let id = helpdesk_test_support::test_id();
    let (url, pool, desk) = database(&id).await;
    let org = desk.customer.organization_id.unwrap();
    let smtp = SmtpServer::start().await;
    let receiver = Receiver::start().await;
    let admin = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO users (id, email, name, password_hash, role, locale) VALUES ($1, $2, 'Ada Admin', 'x', 'admin', 'en')",
        admin,
        format!("admin-{admin}@kadix.test")
    )
    .execute(&pool)
    .await
    .unwrap();
    let admin = Caller { user_id: admin, role: Role::Admin, organization_id: None };
    let target =
        subscriptions::check_url(&EgressPolicy::parse("127.0.0.1/32").unwrap(), &receiver.url()).await.unwrap();
    let input = NewSubscription { url: target, description: "crm".into(), event_types: vec![], organization_id: None };
    let (subscription, _) =
        in_tx(&pool, async |c| subscriptions::create(c, &admin, input, Utc::now()).await).await.unwrap();
    let write = async |range: std::ops::Range<u128>| {
        for n in range {
            in_tx(&pool, async |c| webhook_events::incident_down(c, incident(org, n), Utc::now()).await).await.unwrap();
        }
    };

    let mut env = worker_env(&url, &redis_url(), &format!("test:{id}"), &smtp);
    env.push(("HELPDESK_EGRESS_ALLOW_CIDRS", "127.0.0.1/32".to_owned()));
    env.push(("HELPDESK_WEBHOOK_LEASE_SECONDS", "3".to_owned()));
    let mut first = spawn_worker(&env, &format!("webhooks-a-{id}"));
    write(0..5).await;
    receiver.wait_for(60, "5 deliveries", |r| r.len() >= 5).await;
    receiver.hang(true);
    write(5..20).await;
    wait_until("a delivery held in flight", Duration::from_secs(30), async || {
        receiver.all().iter().any(|r| r.status == 0)
    })
    .await;
    first.kill();
    let held = receiver.all().into_iter().find(|r| r.status == 0).unwrap();

    receiver.hang(false);
    let mut second = spawn_worker(&env, &format!("webhooks-b-{id}"));
    let received = receiver.wait_for(60, "20 deliveries", |r| first_arrivals(r).len() >= 20).await;
    assert_eq!(first_arrivals(&received), delivery_order(&pool, subscription.id).await, "nothing lost, in order");
    let ids: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), 20, "every copy carries an id of the 20 events");
    let resent: Vec<_> = received.iter().filter(|r| r.body == held.body).collect();
    assert_eq!(resent.len(), 1, "the held delivery was sent again, once");
    assert_eq!(resent[0].id, held.id, "with the same webhook-id");
    second.kill();
    pool.close().await;
    drop_database(&format!("helpdesk_test_{id}")).await;
}
