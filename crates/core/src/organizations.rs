//! Plans, organisations and their contracts (DESIGN R1, R2). An organisation has at most one
//! contract in force on any date (the database enforces it); the contract's plan decides what the
//! organisation may ask for.

use crate::audit::{self, AuditEntry};
use crate::caller::Caller;
use crate::error::violated_constraint;
use crate::pagination::{self, PageRequest};
use crate::{CoreError, FieldError, tokens};
use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_domain::plans::Entitlements;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Plan {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub entitlements: Entitlements,
}

struct PlanRow {
    id: Uuid,
    code: String,
    name: String,
    technical_support: bool,
    emergency_priority: bool,
    consultancy_meetings_per_month: i32,
}

impl From<PlanRow> for Plan {
    fn from(row: PlanRow) -> Self {
        Plan {
            id: row.id,
            code: row.code,
            name: row.name,
            entitlements: Entitlements {
                technical_support: row.technical_support,
                emergency_priority: row.emergency_priority,
                consultancy_meetings_per_month: u32::try_from(row.consultancy_meetings_per_month).unwrap_or(0),
            },
        }
    }
}

pub async fn list_plans(conn: &mut PgConnection) -> Result<Vec<Plan>, CoreError> {
    let rows = sqlx::query_as!(PlanRow, "SELECT id, code, name, technical_support, emergency_priority, consultancy_meetings_per_month FROM plans ORDER BY code").fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(Plan::from).collect())
}

#[derive(Debug, Clone)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// The plan of the contract in force today, if any.
    pub active_plan: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn check_org_name(raw: &str) -> Result<String, CoreError> {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(CoreError::invalid("name", "must have between 1 and 200 characters"));
    }
    Ok(name)
}

fn duplicate_name(e: sqlx::Error) -> CoreError {
    match violated_constraint(&e) {
        Some("organizations_name_key") => {
            CoreError::conflict("organization_name_taken", "an organisation with this name already exists")
        }
        _ => CoreError::Database(e),
    }
}

pub async fn create_organization(
    conn: &mut PgConnection,
    actor: &Caller,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Organization, CoreError> {
    actor.require_admin()?;
    let name = check_org_name(name)?;
    let id = Uuid::now_v7();
    sqlx::query!("INSERT INTO organizations (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)", id, name, now)
        .execute(&mut *conn)
        .await
        .map_err(duplicate_name)?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(actor.user_id),
            action: "organization.created",
            subject_type: "organization",
            subject_id: Some(id),
            ip: None,
            details: json!({ "name": name }),
        },
        now,
    )
    .await?;
    Ok(Organization { id, name, active_plan: None, created_at: now, updated_at: now })
}

pub async fn rename_organization(
    conn: &mut PgConnection,
    actor: &Caller,
    id: Uuid,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Organization, CoreError> {
    actor.require_admin()?;
    let name = check_org_name(name)?;
    let updated = sqlx::query!("UPDATE organizations SET name = $2, updated_at = $3 WHERE id = $1", id, name, now)
        .execute(&mut *conn)
        .await
        .map_err(duplicate_name)?;
    if updated.rows_affected() == 0 {
        return Err(CoreError::NotFound("organization"));
    }
    get_organization(conn, actor, id, now).await
}

/// The organisation's name and last change, its row locked until the transaction ends: what a
/// conditional rename (`If-Match`) compares.
pub async fn locked_revision(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
) -> Result<(DateTime<Utc>, String), CoreError> {
    if !caller.may_see_organization(id) {
        return Err(CoreError::NotFound("organization"));
    }
    let row = sqlx::query!("SELECT name, updated_at FROM organizations WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(conn)
        .await?
        .ok_or(CoreError::NotFound("organization"))?;
    Ok((row.updated_at, row.name))
}

/// Another organisation's id answers exactly like an unknown one.
pub async fn get_organization(
    conn: &mut PgConnection,
    caller: &Caller,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Organization, CoreError> {
    if !caller.may_see_organization(id) {
        return Err(CoreError::NotFound("organization"));
    }
    sqlx::query_as!(
        Organization,
        r#"SELECT o.id, o.name, o.created_at, o.updated_at,
                  (SELECT p.code FROM contracts c JOIN plans p ON p.id = c.plan_id
                    WHERE c.organization_id = o.id AND c.starts_on <= $2 AND (c.ends_on IS NULL OR c.ends_on > $2)) AS active_plan
           FROM organizations o WHERE o.id = $1"#,
        id,
        crate::sla_store::local_today(&mut *conn, now).await?
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("organization"))
}

pub async fn list_organizations(
    conn: &mut PgConnection,
    caller: &Caller,
    page: PageRequest,
    now: DateTime<Utc>,
) -> Result<(Vec<Organization>, Option<String>), CoreError> {
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    // Customers list only their own organisation.
    let only = if caller.role.is_staff() { None } else { Some(caller.organization_id.unwrap_or_else(Uuid::nil)) };
    let rows = sqlx::query_as!(
        Organization,
        r#"SELECT o.id, o.name, o.created_at, o.updated_at,
                  (SELECT p.code FROM contracts c JOIN plans p ON p.id = c.plan_id
                    WHERE c.organization_id = o.id AND c.starts_on <= $1 AND (c.ends_on IS NULL OR c.ends_on > $1)) AS active_plan
           FROM organizations o
           WHERE ($2::uuid IS NULL OR o.id = $2)
             AND ($3::timestamptz IS NULL OR (o.created_at, o.id) > ($3, $4))
           ORDER BY o.created_at, o.id
           LIMIT $5"#,
        crate::sla_store::local_today(&mut *conn, now).await?,
        only,
        after_at,
        after_id,
        page.fetch_limit()
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(pagination::finish(rows, &page, |o| (o.created_at, o.id)))
}

#[derive(Debug, Clone)]
pub struct Contract {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub plan_code: String,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
    pub signup_code: String,
    pub created_at: DateTime<Utc>,
}

impl Contract {
    pub fn is_active_on(&self, date: NaiveDate) -> bool {
        self.starts_on <= date && self.ends_on.is_none_or(|end| end > date)
    }
}

pub struct NewContract {
    pub plan_code: String,
    pub starts_on: NaiveDate,
    pub ends_on: Option<NaiveDate>,
}

pub async fn create_contract(
    conn: &mut PgConnection,
    actor: &Caller,
    organization_id: Uuid,
    input: NewContract,
    now: DateTime<Utc>,
) -> Result<Contract, CoreError> {
    actor.require_admin()?;
    if input.ends_on.is_some_and(|end| end <= input.starts_on) {
        return Err(CoreError::invalid("ends_on", "must be after starts_on"));
    }
    let plan_id = sqlx::query_scalar!("SELECT id FROM plans WHERE code = $1", input.plan_code)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| CoreError::Validation(vec![FieldError::new("plan", "is not a known plan code")]))?;
    let exists = sqlx::query_scalar!("SELECT id FROM organizations WHERE id = $1 FOR UPDATE", organization_id)
        .fetch_optional(&mut *conn)
        .await?;
    if exists.is_none() {
        return Err(CoreError::NotFound("organization"));
    }
    let id = Uuid::now_v7();
    let signup_code = tokens::new_signup_code();
    sqlx::query!(
        "INSERT INTO contracts (id, organization_id, plan_id, starts_on, ends_on, signup_code, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        id,
        organization_id,
        plan_id,
        input.starts_on,
        input.ends_on,
        signup_code,
        now
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("contracts_no_overlap") => CoreError::conflict("contract_overlap", "the organisation already has a contract in force during these dates"),
        _ => CoreError::Database(e),
    })?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(actor.user_id),
            action: "contract.created",
            subject_type: "organization",
            subject_id: Some(organization_id),
            ip: None,
            details: json!({ "contract_id": id, "plan": input.plan_code }),
        },
        now,
    )
    .await?;
    Ok(Contract {
        id,
        organization_id,
        plan_code: input.plan_code,
        starts_on: input.starts_on,
        ends_on: input.ends_on,
        signup_code,
        created_at: now,
    })
}

pub async fn list_contracts(
    conn: &mut PgConnection,
    caller: &Caller,
    organization_id: Uuid,
) -> Result<Vec<Contract>, CoreError> {
    if !caller.may_see_organization(organization_id) {
        return Err(CoreError::NotFound("organization"));
    }
    let rows = sqlx::query_as!(
        Contract,
        r#"SELECT c.id, c.organization_id, p.code AS plan_code, c.starts_on, c.ends_on, c.signup_code, c.created_at
           FROM contracts c JOIN plans p ON p.id = c.plan_id
           WHERE c.organization_id = $1 ORDER BY c.starts_on DESC"#,
        organization_id
    )
    .fetch_all(&mut *conn)
    .await?;
    if rows.is_empty() {
        let exists = sqlx::query_scalar!("SELECT id FROM organizations WHERE id = $1", organization_id)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(CoreError::NotFound("organization"));
        }
    }
    Ok(rows)
}

/// Issues a new signup code for a contract; the old one stops working at once.
pub async fn rotate_signup_code(
    conn: &mut PgConnection,
    actor: &Caller,
    organization_id: Uuid,
    contract_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Contract, CoreError> {
    actor.require_admin()?;
    let code = tokens::new_signup_code();
    let contract = sqlx::query_as!(
        Contract,
        r#"WITH updated AS (
               UPDATE contracts SET signup_code = $3, updated_at = $4 WHERE id = $1 AND organization_id = $2
               RETURNING id, organization_id, plan_id, starts_on, ends_on, signup_code, created_at)
           SELECT u.id, u.organization_id, p.code AS plan_code, u.starts_on, u.ends_on, u.signup_code, u.created_at
           FROM updated u JOIN plans p ON p.id = u.plan_id"#,
        contract_id,
        organization_id,
        code,
        now
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound("contract"))?;
    audit::record(
        &mut *conn,
        AuditEntry {
            actor_id: Some(actor.user_id),
            action: "contract.signup_code_rotated",
            subject_type: "organization",
            subject_id: Some(organization_id),
            ip: None,
            details: json!({ "contract_id": contract_id }),
        },
        now,
    )
    .await?;
    Ok(contract)
}

/// The organisation a signup code admits, if its contract is in force on `today`.
pub async fn organization_with_active_signup_code(
    conn: &mut PgConnection,
    code: &str,
    today: NaiveDate,
) -> Result<Option<Uuid>, CoreError> {
    Ok(sqlx::query_scalar!(
        "SELECT organization_id FROM contracts WHERE signup_code = $1 AND starts_on <= $2 AND (ends_on IS NULL OR ends_on > $2)",
        code.to_uppercase(),
        today
    )
    .fetch_optional(&mut *conn)
    .await?)
}

/// The plan in force for an organisation on `today`, with its entitlements.
pub async fn active_plan(
    conn: &mut sqlx::PgConnection,
    organization_id: Uuid,
    today: NaiveDate,
) -> Result<Option<Plan>, CoreError> {
    let row = sqlx::query_as!(
        PlanRow,
        r#"SELECT p.id, p.code, p.name, p.technical_support, p.emergency_priority, p.consultancy_meetings_per_month
           FROM contracts c JOIN plans p ON p.id = c.plan_id
           WHERE c.organization_id = $1 AND c.starts_on <= $2 AND (c.ends_on IS NULL OR c.ends_on > $2)"#,
        organization_id,
        today
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Plan::from))
}
