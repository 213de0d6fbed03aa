//! An organisation's admin contacts (DESIGN R14): the customer accounts the organisation — the
//! data controller — names to speak for it. The first person to sign up is one; an admin contact
//! or a Kadix administrator names others; the last one leaves only after a handover.

use crate::CoreError;
use crate::accounts::Caller;
use crate::audit::{self, AuditEntry};
use chrono::{DateTime, Utc};
use helpdesk_domain::accounts::Role;
use helpdesk_domain::privacy::may_stop_being_admin_contact;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

/// Refuses, with 409 `last_admin_contact`, when `user_id` is the organisation's last admin
/// contact and others remain to hand over to. Locks the organisation's contacts so two leaving at
/// once cannot both pass.
pub async fn check_may_leave(conn: &mut PgConnection, organization_id: Uuid, user_id: Uuid) -> Result<(), CoreError> {
    let members = sqlx::query!(
        "SELECT id, admin_contact FROM users
         WHERE organization_id = $1 AND disabled_at IS NULL AND anonymised_at IS NULL
         ORDER BY id FOR UPDATE",
        organization_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let is_contact = members.iter().any(|m| m.id == user_id && m.admin_contact);
    let others = members.iter().filter(|m| m.id != user_id);
    let other_contacts = others.clone().filter(|m| m.admin_contact).count();
    let other_members = others.count();
    may_stop_being_admin_contact(
        is_contact,
        i64::try_from(other_contacts).unwrap_or(i64::MAX),
        i64::try_from(other_members).unwrap_or(i64::MAX),
    )
    .map_err(|e| CoreError::conflict("last_admin_contact", e.to_string()))
}

/// Administrators, and the organisation's own admin contacts, manage its admin contacts.
async fn check_manager(conn: &mut PgConnection, caller: &Caller, organization_id: Uuid) -> Result<(), CoreError> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::Agent => Err(CoreError::forbidden("admin_only", "this action needs an administrator")),
        Role::Customer => {
            if !caller.may_see_organization(organization_id) {
                return Err(CoreError::NotFound("organization"));
            }
            if is_admin_contact(conn, caller.user_id).await? {
                Ok(())
            } else {
                Err(CoreError::forbidden("admin_contact_only", "only the organisation's admin contacts may do this"))
            }
        }
    }
}

/// Sets or clears `user_id`'s admin-contact flag; clearing the last one needs a handover first.
pub async fn set(
    conn: &mut PgConnection,
    caller: &Caller,
    organization_id: Uuid,
    user_id: Uuid,
    admin_contact: bool,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    check_manager(conn, caller, organization_id).await?;
    if !admin_contact {
        check_may_leave(conn, organization_id, user_id).await?;
    }
    let updated = sqlx::query!(
        "UPDATE users SET admin_contact = $3, updated_at = $4
         WHERE id = $1 AND organization_id = $2 AND role = 'customer' AND disabled_at IS NULL AND anonymised_at IS NULL",
        user_id,
        organization_id,
        admin_contact,
        now
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(CoreError::NotFound("user"));
    }
    audit::record(
        conn,
        AuditEntry {
            actor_id: Some(caller.user_id),
            action: if admin_contact {
                "organization.admin_contact_named"
            } else {
                "organization.admin_contact_removed"
            },
            subject_type: "user",
            subject_id: Some(user_id),
            ip: None,
            details: json!({ "organization_id": organization_id }),
        },
        now,
    )
    .await?;
    Ok(())
}

/// Whether `user_id` is an admin contact of their organisation.
pub async fn is_admin_contact(conn: &mut PgConnection, user_id: Uuid) -> Result<bool, CoreError> {
    Ok(sqlx::query_scalar!("SELECT admin_contact FROM users WHERE id = $1", user_id)
        .fetch_optional(conn)
        .await?
        .unwrap_or(false))
}
