//! `helpdesk-api seed-demo`: demo data so README's walk-through works right after start — one
//! organisation per plan with a contract, an agent, and a customer per organisation.

use helpdesk_core::accounts::{self, Caller, NewStaffUser, Registration};
use helpdesk_core::organizations::{self, NewContract};
use helpdesk_core::sla_store::local_today;
use helpdesk_core::{Clock, CoreError};
use helpdesk_domain::accounts::Role;
use sqlx::PgPool;

pub const DEMO_PASSWORD: &str = "demo-password-2026";

/// Loads the demo data; running it again changes nothing. Returns lines to print.
pub async fn seed_demo(pool: &PgPool, clock: &Clock, terms_version: &str) -> Result<Vec<String>, CoreError> {
    let now = clock.now();
    let mut lines = Vec::new();
    let admin_email = "demo-admin@helpdesk.local";
    let admin = match accounts::create_staff_user(
        pool,
        None,
        NewStaffUser {
            email: admin_email.into(),
            name: "Demo Admin".into(),
            role: Role::Admin,
            password: DEMO_PASSWORD.into(),
            locale: None,
        },
        now,
    )
    .await
    {
        Ok(user) => user.id,
        Err(CoreError::Conflict { .. }) => sqlx_admin_id(pool, admin_email).await?,
        Err(e) => return Err(e),
    };
    let actor = Caller { user_id: admin, role: Role::Admin, organization_id: None };
    lines.push(format!("admin     {admin_email} / {DEMO_PASSWORD}"));

    let agent = NewStaffUser {
        email: "agent@helpdesk.local".into(),
        name: "Demo Agent".into(),
        role: Role::Agent,
        password: DEMO_PASSWORD.into(),
        locale: None,
    };
    match accounts::create_staff_user(pool, Some(admin), agent, now).await {
        Ok(_) | Err(CoreError::Conflict { .. }) => {
            lines.push(format!("agent     agent@helpdesk.local / {DEMO_PASSWORD}"))
        }
        Err(e) => return Err(e),
    }

    for (plan, org_name) in
        [("essencial", "Demo Essencial Ltda"), ("pro", "Demo Pro Ltda"), ("premium", "Demo Premium Ltda")]
    {
        let org = match helpdesk_core::db::in_tx(pool, async |c| {
            organizations::create_organization(c, &actor, org_name, now).await
        })
        .await
        {
            Ok(org) => org,
            Err(CoreError::Conflict { .. }) => {
                // Print the accounts again: the codes are what a newcomer re-runs the seed for.
                let (org_id, code) = existing_signup_code(pool, &actor, org_name, now).await?;
                lines.push(format!(
                    "{plan:<9} customer@{plan}.demo.local / {DEMO_PASSWORD}  (already there: org {org_id}, signup code {code})"
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        let starts_on = local_today(pool, now).await?;
        let contract = helpdesk_core::db::in_tx(pool, async |c| {
            organizations::create_contract(
                c,
                &actor,
                org.id,
                NewContract { plan_code: plan.into(), starts_on, ends_on: None },
                now,
            )
            .await
        })
        .await?;
        let email = format!("customer@{plan}.demo.local");
        let registration = Registration {
            email: email.clone(),
            password: DEMO_PASSWORD.into(),
            name: format!("Cliente {org_name}"),
            signup_code: contract.signup_code.clone(),
            accepted_terms_version: terms_version.into(),
            locale: None,
        };
        accounts::register(pool, registration, terms_version, None, now).await?;
        lines.push(format!(
            "{plan:<9} {email} / {DEMO_PASSWORD}  (org {}, signup code {})",
            org.id, contract.signup_code
        ));
    }
    Ok(lines)
}

/// The id and current signup code of a demo organisation seeded earlier.
async fn existing_signup_code(
    pool: &PgPool,
    actor: &Caller,
    name: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(uuid::Uuid, String), CoreError> {
    let mut cursor: Option<String> = None;
    loop {
        let page = helpdesk_core::pagination::PageRequest::parse(Some(100), cursor.as_deref())?;
        let (orgs, next) = organizations::list_organizations(&mut *pool.acquire().await?, actor, page, now).await?;
        if let Some(org) = orgs.into_iter().find(|o| o.name == name) {
            // Newest start first: the contract people sign up with.
            let contracts = organizations::list_contracts(&mut *pool.acquire().await?, actor, org.id).await?;
            let code = contracts.into_iter().next().map(|c| c.signup_code).unwrap_or_else(|| "(no contract)".into());
            return Ok((org.id, code));
        }
        match next {
            Some(next) => cursor = Some(next),
            None => return Err(CoreError::NotFound("demo organization")),
        }
    }
}

async fn sqlx_admin_id(pool: &PgPool, email: &str) -> Result<uuid::Uuid, CoreError> {
    let (users, _) = accounts::list_users(
        pool,
        accounts::UserFilter { role: Some(Role::Admin), organization_id: None },
        helpdesk_core::pagination::PageRequest::parse(Some(100), None)?,
    )
    .await?;
    users.into_iter().find(|u| u.email == email).map(|u| u.id).ok_or(CoreError::NotFound("demo admin"))
}
