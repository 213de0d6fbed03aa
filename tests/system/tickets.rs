//! R5–R8 end to end: a customer opens a ticket and hears of it by e-mail, an agent answers and
//! waits on the customer (the resolution clock pauses), then days pass for the deployment: the
//! worker reminds the customer (72 h) and closes the ticket (48 h after the reminder).

use crate::support::{agent, customer_on};
use helpdesk_system_tests::{ADMIN_EMAIL, System};
use reqwest::{Method, StatusCode};
use serde_json::json;
use std::time::Duration;

const HOUR: u64 = 3600;

#[tokio::test]
async fn a_ticket_is_answered_paused_while_waiting_reminded_and_auto_closed() {
    let mut system = System::start().await;
    let admin = system.login(ADMIN_EMAIL).await;
    let (customer_email, _) = customer_on(&system, &admin, "pro").await;
    let (_, agent_email) = agent(&system, &admin).await;
    let customer = system.login(&customer_email).await;
    let agent = system.login(&agent_email).await;

    let ticket = system
        .expect(
            StatusCode::CREATED,
            Method::POST,
            "/v1/tickets",
            Some(&customer),
            Some(json!({ "subject": "Site fora do ar", "description": "Erro 502 desde 10h", "category": "technical", "severity": "high" })),
        )
        .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    let number = ticket["number"].as_i64().unwrap();
    assert!(ticket["sla"]["first_response"]["due_at"].is_string(), "{ticket}");
    system.mail(&customer_email, &format!("Ticket #{number} opened")).await;

    // The agent sees it in the queue and answers, waiting on the customer.
    let queue = system.expect(StatusCode::OK, Method::GET, "/v1/tickets?sort=due", Some(&agent), None).await;
    assert!(queue["items"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{queue}");
    let reply = json!({ "body": "Can you send the request id from the error page?", "status": "waiting_customer" });
    system
        .expect(StatusCode::CREATED, Method::POST, &format!("/v1/tickets/{id}/messages"), Some(&agent), Some(reply))
        .await;
    system.mail(&customer_email, &format!("New reply on ticket #{number}")).await;

    let sla = system.expect(StatusCode::OK, Method::GET, &format!("/v1/tickets/{id}/sla"), Some(&customer), None).await;
    assert_eq!(sla["first_response"]["phase"], "met", "{sla}");
    assert_eq!(sla["resolution"]["phase"], "paused", "waiting on the customer pauses resolution: {sla}");
    let seen = system.expect(StatusCode::OK, Method::GET, &format!("/v1/tickets/{id}"), Some(&customer), None).await;
    assert!(seen["sla"]["resolution"]["due_at"].is_null(), "no due instant while paused: {seen}");

    // 73 hours later the customer has not answered: one reminder, the ticket still waits.
    system.restart_ahead(Duration::from_secs(73 * HOUR)).await;
    system.mail(&customer_email, &format!("Reminder: ticket #{number} is waiting for your answer")).await;
    let customer = system.login(&customer_email).await;
    let waiting = system.expect(StatusCode::OK, Method::GET, &format!("/v1/tickets/{id}"), Some(&customer), None).await;
    assert_eq!(waiting["status"], "waiting_customer", "{waiting}");
    assert!(waiting["reminder_sent_at"].is_string(), "{waiting}");

    // 48 hours after the reminder, still no answer: the worker closes it and says so.
    system.restart_ahead(Duration::from_secs(122 * HOUR)).await;
    system.mail(&customer_email, &format!("Ticket #{number} closed")).await;
    let customer = system.login(&customer_email).await;
    let closed = system.expect(StatusCode::OK, Method::GET, &format!("/v1/tickets/{id}"), Some(&customer), None).await;
    assert_eq!(closed["status"], "closed", "{closed}");
    assert_eq!(closed["close_reason"], "auto_closed", "{closed}");
    let reminders = system.smtp.messages().iter().filter(|m| m.contains("Reminder: ticket #")).count();
    assert_eq!(reminders, 1, "one reminder per wait, across restarts");
}
