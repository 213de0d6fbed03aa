//! SLA attainment reports over HTTP: a month of tickets with known outcomes, driven through the
//! real ticket API and the real timer operation (auto-close), with the app's clock under the
//! test's control. São Paulo is UTC−3: 09:00 local is 12:00Z.
use crate::helpers::*;
use chrono::{DateTime, Utc};
use helpdesk_core::sla_store::SlaStore;
use helpdesk_core::ticket_timers;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use uuid::Uuid;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn agent(app: &TestApp, name: &str) -> (String, String) {
    let (id, token, _) = app.agent_named(name).await;
    (id, token)
}

async fn open(app: &TestApp, token: &str, severity: &str) -> String {
    let body = json!({ "subject": "Pedido", "description": "Detalhes do pedido.", "category": "technical", "severity": severity });
    let ticket = ok_json(app.post("/v1/tickets", Some(token), &body).await, StatusCode::CREATED).await;
    ticket["id"].as_str().unwrap().to_owned()
}

async fn assign(app: &TestApp, token: &str, ticket: &str, agent: &str) {
    ok_json(app.patch(&format!("/v1/tickets/{ticket}"), token, &json!({ "assignee_id": agent })).await, StatusCode::OK)
        .await;
}

async fn reply(app: &TestApp, token: &str, ticket: &str, status: Option<&str>) {
    let mut body = json!({ "body": "Resposta." });
    if let Some(status) = status {
        body["status"] = json!(status);
    }
    ok_json(app.post(&format!("/v1/tickets/{ticket}/messages"), Some(token), &body).await, StatusCode::CREATED).await;
}

async fn close(app: &TestApp, token: &str, ticket: &str) {
    ok_json(app.post(&format!("/v1/tickets/{ticket}/close"), Some(token), &json!({})).await, StatusCode::OK).await;
}

/// What the test built each ticket to be, so the expected figures come from this table alone.
struct Known {
    id: String,
    plan: &'static str,
    severity: &'static str,
    agent: Option<String>,
    org: Uuid,
    first_response: &'static str,
    resolution: &'static str,
    auto_closed: bool,
}

/// What puts a ticket in a group.
type KeyOf = Box<dyn Fn(&Known) -> String>;

/// The expected row of each group: (tickets, auto_closed, [fr met, breached, abandoned, pending], [res …]).
type Figures = (u64, u64, [u64; 4], [u64; 4]);

fn expected(known: &[Known], key: impl Fn(&Known) -> String) -> BTreeMap<String, Figures> {
    let slot = |outcome: &str| ["met", "breached", "abandoned", "pending"].iter().position(|o| *o == outcome).unwrap();
    let mut groups: BTreeMap<String, Figures> = BTreeMap::new();
    for k in known {
        let g = groups.entry(key(k)).or_default();
        g.0 += 1;
        g.1 += u64::from(k.auto_closed);
        g.2[slot(k.first_response)] += 1;
        g.3[slot(k.resolution)] += 1;
    }
    groups
}

fn figures_of(row: &Value) -> Figures {
    let metric = |m: &Value| {
        ["met", "breached", "abandoned", "pending"].map(|f| m[f].as_u64().unwrap_or_else(|| panic!("{f} in {m}")))
    };
    (
        row["tickets"].as_u64().unwrap(),
        row["auto_closed"].as_u64().unwrap(),
        metric(&row["first_response"]),
        metric(&row["resolution"]),
    )
}

fn actual(report: &Value) -> BTreeMap<String, Figures> {
    report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap().to_owned(), figures_of(g)))
        .collect()
}

async fn report(app: &TestApp, token: &str, query: &str) -> Value {
    ok_json(
        app.get(&format!("/v1/reports/sla?from=2026-11-01&to=2026-11-30&{query}"), Some(token)).await,
        StatusCode::OK,
    )
    .await
}

/// The ids a ticket-list link returns (one page is enough here).
async fn listed(app: &TestApp, token: &str, url: &str) -> Vec<String> {
    let page = ok_json(app.get(&format!("{url}&limit=100"), Some(token)).await, StatusCode::OK).await;
    let mut ids: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

/// A month in which every outcome the report distinguishes happens once or more, and tickets
/// just outside the local month that must not count. Returns the app, the tokens and the table.
struct Month {
    app: TestApp,
    agent_token: String,
    pro_customer: String,
    premium_customer: String,
    known: Vec<Known>,
}

async fn seeded_month() -> Month {
    // Saturday 31 October, 23:30 local: before the period.
    let app = spawn_app_at("2026-11-01T02:30:00Z").await;
    let (pro_customer, pro_org, _) = app.customer_on("pro").await;
    let (premium_customer, premium_org, _) = app.customer_on("premium").await;
    let (a1, a1_token) = agent(&app, "Alice").await;
    let (a2, a2_token) = agent(&app, "Bruno").await;
    let store = SlaStore::default();
    let outside_before = open(&app, &pro_customer, "normal").await;

    // Tuesday 3 November, 09:00 local.
    app.clock.set(at("2026-11-03T12:00:00Z"));
    let met = open(&app, &pro_customer, "normal").await; // 8 h / 40 h
    let late_first_response = open(&app, &pro_customer, "critical").await; // 2 h / 8 h
    let paused = open(&app, &pro_customer, "high").await; // 4 h / 16 h
    let abandoned = open(&app, &pro_customer, "low").await; // 16 h / 72 h
    let abandoned_after_breach = open(&app, &pro_customer, "critical").await;
    let never_answered = open(&app, &premium_customer, "normal").await; // 4 h / 24 h
    let resolution_overdue = open(&app, &premium_customer, "low").await; // 8 h / 40 h
    for (ticket, agent) in [(&met, &a1), (&late_first_response, &a1), (&resolution_overdue, &a1)] {
        assign(&app, &a1_token, ticket, agent).await;
    }
    for ticket in [&paused, &abandoned, &abandoned_after_breach] {
        assign(&app, &a2_token, ticket, &a2).await;
    }

    app.clock.set(at("2026-11-03T13:00:00Z"));
    reply(&app, &a1_token, &met, None).await;
    reply(&app, &a1_token, &resolution_overdue, None).await;
    reply(&app, &a2_token, &paused, Some("waiting_customer")).await;
    reply(&app, &a2_token, &abandoned, Some("waiting_customer")).await;
    app.clock.set(at("2026-11-03T14:00:00Z"));
    close(&app, &a1_token, &met).await;
    // Three business hours in: the 2 h first response is late; the 8 h resolution is not.
    app.clock.set(at("2026-11-03T15:00:00Z"));
    reply(&app, &a1_token, &late_first_response, None).await;
    reply(&app, &a2_token, &abandoned_after_breach, Some("waiting_customer")).await;
    app.clock.set(at("2026-11-03T15:30:00Z"));
    close(&app, &a1_token, &late_first_response).await;

    // Thursday 5 November: the customer answers after 18 paused business hours; the ticket
    // closes with 2 counted hours of its 16 h, so it is met only because paused time is left out.
    app.clock.set(at("2026-11-05T12:00:00Z"));
    reply(&app, &pro_customer, &paused, None).await;
    app.clock.set(at("2026-11-05T13:00:00Z"));
    close(&app, &a2_token, &paused).await;

    // R8 through the worker's own operation: the reminder after 72 h, the auto-close 48 h later.
    for (step, instant) in [("reminder", "2026-11-06T15:01:00Z"), ("auto-close", "2026-11-08T15:02:00Z")] {
        app.clock.set(at(instant));
        for ticket in [&abandoned, &abandoned_after_breach] {
            let id: Uuid = ticket.parse().unwrap();
            let outcome = helpdesk_test_support::in_tx(&app.pool, async |c| {
                ticket_timers::run_due(c, &store, id, app.clock.now()).await
            })
            .await
            .unwrap();
            assert!(matches!(outcome, ticket_timers::TimerOutcome::Acted { .. }), "{step} of {ticket}: {outcome:?}");
        }
    }
    for ticket in [&abandoned, &abandoned_after_breach] {
        let t = ok_json(app.get(&format!("/v1/tickets/{ticket}"), Some(&a2_token)).await, StatusCode::OK).await;
        assert_eq!(t["close_reason"], "auto_closed", "{t}");
    }

    // Monday 30 November, 23:30 local: still in the period; then Tuesday 1 December, 00:30 local.
    app.clock.set(at("2026-12-01T02:30:00Z"));
    let last_minute = open(&app, &premium_customer, "normal").await;
    app.clock.set(at("2026-12-01T03:30:00Z"));
    let outside_after = open(&app, &pro_customer, "normal").await;
    let _ = (outside_before, outside_after);

    let k = |id: &String, plan, severity, agent: Option<&String>, org, fr, res, auto_closed| Known {
        id: id.clone(),
        plan,
        severity,
        agent: agent.cloned(),
        org,
        first_response: fr,
        resolution: res,
        auto_closed,
    };
    let known = vec![
        k(&met, "pro", "normal", Some(&a1), pro_org, "met", "met", false),
        k(&late_first_response, "pro", "critical", Some(&a1), pro_org, "breached", "met", false),
        k(&paused, "pro", "high", Some(&a2), pro_org, "met", "met", false),
        k(&abandoned, "pro", "low", Some(&a2), pro_org, "abandoned", "abandoned", true),
        k(&abandoned_after_breach, "pro", "critical", Some(&a2), pro_org, "breached", "abandoned", true),
        // Never answered: both due instants passed long ago (no worker recorded it: the running
        // due instant alone makes it breached).
        k(&never_answered, "premium", "normal", None, premium_org, "breached", "breached", false),
        k(&resolution_overdue, "premium", "low", Some(&a1), premium_org, "met", "breached", false),
        k(&last_minute, "premium", "normal", None, premium_org, "pending", "pending", false),
    ];
    Month { app, agent_token: a1_token, pro_customer, premium_customer, known }
}

#[tokio::test]
async fn a_seeded_month_gives_the_expected_figures_per_group_and_each_figure_lists_its_tickets() {
    let Month { app, agent_token, known, .. } = seeded_month().await;
    let groupings: [(&str, KeyOf); 5] = [
        ("plan", Box::new(|k| k.plan.to_owned())),
        ("severity", Box::new(|k| k.severity.to_owned())),
        ("agent", Box::new(|k| k.agent.clone().unwrap_or_else(|| "unassigned".into()))),
        ("organization", Box::new(|k| k.org.to_string())),
        ("month", Box::new(|_| "2026-11".to_owned())),
    ];
    for (group_by, key) in &groupings {
        let report = report(&app, &agent_token, &format!("group_by={group_by}")).await;
        assert_eq!(actual(&report), expected(&known, key), "group_by={group_by}: {report}");
        assert_eq!(figures_of(&report["total"]), expected(&known, |_| "all".into())["all"], "total, {group_by}");
        assert_eq!(report["time_zone"], "America/Sao_Paulo");
        assert_eq!(report["starts_at"], "2026-11-01T03:00:00Z");
        assert_eq!(report["ends_at"], "2026-12-01T03:00:00Z");

        // Every figure is a ticket list: the same tickets the test built into that figure.
        for row in report["groups"].as_array().unwrap() {
            let in_row: Vec<&Known> = known.iter().filter(|k| key(k) == row["key"].as_str().unwrap()).collect();
            let ids = |pred: &dyn Fn(&Known) -> bool| {
                let mut ids: Vec<String> = in_row.iter().filter(|k| pred(k)).map(|k| k.id.clone()).collect();
                ids.sort();
                ids
            };
            let url = |v: &Value| v.as_str().unwrap().to_owned();
            assert_eq!(listed(&app, &agent_token, &url(&row["tickets_url"])).await, ids(&|_| true), "{row}");
            assert_eq!(
                listed(&app, &agent_token, &url(&row["auto_closed_tickets_url"])).await,
                ids(&|k| k.auto_closed),
                "{row}"
            );
            for metric in ["first_response", "resolution"] {
                for outcome in ["met", "breached"] {
                    let link = url(&row[metric][format!("{outcome}_tickets_url")]);
                    let want =
                        ids(&|k| (if metric == "first_response" { k.first_response } else { k.resolution }) == outcome);
                    assert_eq!(listed(&app, &agent_token, &link).await, want, "{metric} {outcome}: {link}");
                }
            }
        }
    }

    // Shares and bands, by hand: Pro's first response 2 met / 2 breached; Premium's 1 / 1; Alice's
    // first responses 2 met / 1 breached (66.7 %); the resolutions of Pro 3 met / 0 breached.
    let by_plan = report(&app, &agent_token, "group_by=plan").await;
    let pro = by_plan["groups"].as_array().unwrap().iter().find(|g| g["key"] == "pro").unwrap();
    assert_eq!(pro["first_response"]["share"], 0.5);
    assert_eq!(pro["first_response"]["band"], "below");
    assert_eq!(pro["resolution"]["share"], 1.0);
    assert_eq!(pro["resolution"]["band"], "above");
    assert!(by_plan["formula"].as_str().unwrap().contains("met / (met + breached)"));
    let by_agent = report(&app, &agent_token, "group_by=agent").await;
    let alice = by_agent["groups"].as_array().unwrap().iter().find(|g| g["label"] == "Alice").unwrap();
    assert_eq!(alice["first_response"]["share"], 2.0 / 3.0);
    let unassigned = by_agent["groups"].as_array().unwrap().iter().find(|g| g["key"] == "unassigned").unwrap();
    assert_eq!(unassigned["first_response"]["share"], 0.0, "1 breached, 1 pending left out");
}

#[tokio::test]
async fn the_csv_has_the_same_figures_as_the_json() {
    let Month { app, agent_token, .. } = seeded_month().await;
    for group_by in ["agent", "plan"] {
        let json = report(&app, &agent_token, &format!("group_by={group_by}")).await;
        let response = app
            .get(
                &format!("/v1/reports/sla?from=2026-11-01&to=2026-11-30&group_by={group_by}&format=csv"),
                Some(&agent_token),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
        let body = response.text().await.unwrap();
        let mut reader = csv::Reader::from_reader(body.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
        let records: Vec<BTreeMap<String, String>> = reader
            .records()
            .map(|r| header.iter().cloned().zip(r.unwrap().iter().map(str::to_owned)).collect())
            .collect();
        let rows: Vec<&Value> = json["groups"].as_array().unwrap().iter().chain([&json["total"]]).collect();
        assert_eq!(records.len(), rows.len(), "{body}");
        for (record, row) in records.iter().zip(rows) {
            assert_eq!(record["group_by"], group_by);
            assert_eq!(record["key"], row["key"].as_str().unwrap());
            assert_eq!(record["label"], row["label"].as_str().unwrap_or(""));
            assert_eq!(record["tickets"], row["tickets"].to_string());
            assert_eq!(record["auto_closed"], row["auto_closed"].to_string());
            assert_eq!(record["tickets_url"], row["tickets_url"].as_str().unwrap());
            for metric in ["first_response", "resolution"] {
                for figure in ["met", "breached", "abandoned", "pending"] {
                    assert_eq!(
                        record[&format!("{metric}_{figure}")],
                        row[metric][figure].to_string(),
                        "{metric}_{figure}"
                    );
                }
                let share = &record[&format!("{metric}_share")];
                match row[metric]["share"].as_f64() {
                    Some(value) => assert_eq!(share.parse::<f64>().unwrap(), value, "{metric} share"),
                    None => assert_eq!(share, ""),
                }
                assert_eq!(record[&format!("{metric}_band")], row[metric]["band"].as_str().unwrap_or(""));
            }
        }
    }
}

#[tokio::test]
async fn a_customer_sees_only_their_own_organisations_figures() {
    let Month { app, pro_customer, premium_customer, known, .. } = seeded_month().await;
    let premium_org = known.iter().find(|k| k.plan == "premium").unwrap().org;
    let mine = report(&app, &premium_customer, "group_by=organization").await;
    assert_eq!(actual(&mine).keys().collect::<Vec<_>>(), [&premium_org.to_string()]);
    assert_eq!(mine["organization_id"], premium_org.to_string());
    assert_eq!(mine["total"]["tickets"], 3);
    let pro_view = report(&app, &pro_customer, "group_by=plan").await;
    assert_eq!(actual(&pro_view).keys().collect::<Vec<_>>(), ["pro"]);
    assert_eq!(pro_view["total"]["tickets"], 5);
    // Following a link does not widen the view either: the list keeps to the organisation.
    let everyone = listed(&app, &premium_customer, pro_view["total"]["tickets_url"].as_str().unwrap()).await;
    assert_eq!(everyone.len(), 3, "the premium customer's list holds its own three tickets only");
    // No parameter names another organisation.
    let other = app
        .get(
            &format!("/v1/reports/sla?from=2026-11-01&to=2026-11-30&organization_id={premium_org}"),
            Some(&pro_customer),
        )
        .await;
    assert_problem(other, StatusCode::BAD_REQUEST, "validation_failed").await;
}

#[tokio::test]
async fn bad_report_queries_name_the_parameter() {
    let app = spawn_app().await;
    let token = app.admin_token.clone();
    for (query, status, field) in [
        ("from=2026-11-30&to=2026-11-01", StatusCode::UNPROCESSABLE_ENTITY, "to"),
        ("from=2025-01-01&to=2026-11-01", StatusCode::UNPROCESSABLE_ENTITY, "to"),
        ("from=2026-11-01&to=2026-11-30&group_by=planet", StatusCode::UNPROCESSABLE_ENTITY, "group_by"),
        ("from=2026-11-01&to=2026-11-30&format=xlsx", StatusCode::UNPROCESSABLE_ENTITY, "format"),
        ("from=2026-11&to=2026-11-30", StatusCode::BAD_REQUEST, "from"),
    ] {
        let problem = assert_problem(
            app.get(&format!("/v1/reports/sla?{query}"), Some(&token)).await,
            status,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    assert_problem(
        app.get("/v1/reports/sla?from=2026-11-01&to=2026-11-30", None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;
}

/// The database's `sla_outcome` and the domain's `Outcome::of` are one definition written twice;
/// every combination of their inputs must agree.
#[tokio::test]
async fn the_sql_verdict_matches_the_domain_verdict_for_every_input_shape() {
    use helpdesk_domain::attainment::Outcome;
    let app = spawn_app().await;
    let now = at("2026-11-10T12:00:00Z");
    let instants = [None, Some(at("2026-11-10T11:00:00Z")), Some(now), Some(at("2026-11-10T13:00:00Z"))];
    for flag in [false, true] {
        for due in instants {
            for met in instants {
                for reason in [None, Some("resolved"), Some("auto_closed")] {
                    let sql: String = sqlx::query_scalar!(
                        r#"SELECT sla_outcome($1, $2, $3, $4, $5) AS "outcome!""#,
                        flag,
                        due,
                        met,
                        reason,
                        now
                    )
                    .fetch_one(&app.pool)
                    .await
                    .unwrap();
                    let domain = Outcome::of(flag, due, met, reason == Some("auto_closed"), now);
                    assert_eq!(sql, domain.as_str(), "flag {flag}, due {due:?}, met {met:?}, reason {reason:?}");
                }
            }
        }
    }
}
