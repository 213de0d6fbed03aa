//! R13 end to end: the admin makes an agent a consultant, a Premium customer picks a free slot,
//! books it, and both receive the confirmation with the .ics invite from the worker.

use crate::support::{agent, customer_on};
use chrono::{TimeDelta, Utc};
use helpdesk_system_tests::{ADMIN_EMAIL, System};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_customer_books_a_consultancy_meeting_and_both_sides_get_the_invite() {
    let system = System::start().await;
    let admin = system.login(ADMIN_EMAIL).await;
    let (customer_email, org_id) = customer_on(&system, &admin, "premium").await;
    let (consultant_id, consultant_email) = agent(&system, &admin).await;
    system
        .expect(StatusCode::OK, Method::PUT, &format!("/v1/consultants/{consultant_id}"), Some(&admin), Some(json!({})))
        .await;
    let customer = system.login(&customer_email).await;

    let from = Utc::now().date_naive();
    let to = from + TimeDelta::days(14);
    let slots = system
        .expect(
            StatusCode::OK,
            Method::GET,
            &format!("/v1/meetings/slots?from={from}&to={to}&duration=45"),
            Some(&customer),
            None,
        )
        .await;
    let slot = &slots["slots"][0];
    assert!(slot["consultants"].as_array().unwrap().iter().any(|c| c == consultant_id.as_str()), "{slots}");

    let booking = json!({ "starts_at": slot["starts_at"], "duration_minutes": 45, "topic": "Review of the CDN setup" });
    let meeting =
        system.expect(StatusCode::CREATED, Method::POST, "/v1/meetings", Some(&customer), Some(booking)).await;
    assert_eq!(meeting["organization_id"], org_id.as_str(), "{meeting}");
    assert_eq!(meeting["consultant"]["id"], consultant_id.as_str(), "{meeting}");
    assert!(meeting["meeting_url"].as_str().unwrap().starts_with("https://"), "{meeting}");

    let id = meeting["id"].as_str().unwrap();
    for to in [&customer_email, &consultant_email] {
        let invite = system.mail(to, "invite.ics").await;
        assert!(invite.contains("METHOD:REQUEST"), "{invite}");
        assert!(invite.contains(&format!("UID:meeting-{id}@kadix-helpdesk")), "{invite}");
    }
}
