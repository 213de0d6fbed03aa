//! Routes, one module per resource. `configure` registers them and, through utoipa-actix-web,
//! collects their OpenAPI paths and schemas: the document is generated from these handlers.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod consultants;
pub mod contact;
pub mod dto;
pub mod health;
pub mod incidents;
pub mod maintenance_windows;
pub mod me;
pub mod meetings;
pub mod monitors;
pub mod organizations;
pub mod plans;
pub mod privacy;
pub mod reports;
pub mod tickets;
pub mod users;
pub mod webhooks;

use utoipa_actix_web::service_config::ServiceConfig;

/// actix tries routes in the order registered here (the router, and again the request metrics
/// and log span for the matched pattern), so the ticket routes, the most requested, come first.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::live)
        .service(health::ready)
        .service(tickets::create_ticket)
        .service(tickets::list_tickets)
        .service(tickets::get_ticket)
        .service(tickets::update_ticket)
        .service(tickets::list_messages)
        .service(tickets::create_message)
        .service(tickets::list_events)
        .service(tickets::explain_sla)
        .service(tickets::close_ticket)
        .service(tickets::reopen_ticket)
        .service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::password_reset_request)
        .service(auth::password_reset_confirm)
        .service(me::get_me)
        .service(me::update_me)
        .service(me::change_password)
        .service(privacy::accept_terms)
        .service(privacy::export_me)
        .service(privacy::delete_me)
        .service(plans::list_plans)
        .service(organizations::list_organizations)
        .service(organizations::create_organization)
        .service(organizations::get_organization)
        .service(organizations::update_organization)
        .service(organizations::list_contracts)
        .service(organizations::create_contract)
        .service(organizations::rotate_signup_code)
        .service(users::list_users)
        .service(users::create_user)
        .service(privacy::get_user)
        .service(privacy::export_user)
        .service(privacy::delete_user)
        .service(privacy::add_admin_contact)
        .service(privacy::remove_admin_contact)
        .service(audit::list_audit_events)
        .service(calendar::list_holidays)
        .service(calendar::add_holiday)
        .service(calendar::remove_holiday)
        .service(calendar::get_calendar)
        .service(calendar::set_opening_hours)
        .service(calendar::get_policy)
        .service(calendar::set_policy)
        .service(consultants::list_consultants)
        .service(consultants::get_consultant)
        .service(consultants::set_consultant)
        .service(consultants::add_time_off)
        .service(consultants::remove_time_off)
        // `slots` before `{id}`, which would otherwise take it.
        .service(meetings::list_slots)
        .service(meetings::create_meeting)
        .service(meetings::list_meetings)
        .service(meetings::get_meeting)
        .service(meetings::reschedule_meeting)
        .service(meetings::cancel_meeting)
        .service(monitors::create_monitor)
        .service(monitors::list_monitors)
        .service(monitors::get_monitor)
        .service(monitors::update_monitor)
        .service(monitors::delete_monitor)
        .service(monitors::pause_monitor)
        .service(monitors::resume_monitor)
        .service(incidents::list_incidents)
        .service(incidents::get_incident)
        .service(maintenance_windows::create_window)
        .service(maintenance_windows::list_windows)
        .service(maintenance_windows::get_window)
        .service(maintenance_windows::cancel_window)
        .service(reports::sla_report)
        .service(contact::contact_form)
        .service(contact::submit_contact)
        .service(contact::list_contact_requests)
        .service(contact::get_contact_request)
        .service(contact::answer_contact_request)
        .service(contact::close_contact_request)
        .service(admin::list_outbox)
        .service(admin::retry_outbox)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::enable_webhook)
        .service(webhooks::disable_webhook)
        .service(webhooks::rotate_webhook_secret)
        .service(webhooks::list_deliveries)
        .service(webhooks::replay_delivery)
        .service(webhooks::replay_since)
        .service(webhooks::test_webhook);
}
