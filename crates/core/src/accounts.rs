//! Accounts and sessions (DESIGN R1, §5): sign-up with an organisation's signup code, login,
//! refresh-token rotation with reuse detection, logout, password change and reset, profile.

use crate::audit::{self, AuditEntry};
pub use crate::caller::Caller;
use crate::error::violated_constraint;
use crate::organizations;
use crate::outbox::{self, NewEmail, templates};
use crate::pagination::{self, PageRequest};
use crate::tokens::{self, TokenKeys};
use crate::{CoreError, FieldError, passwords};
use chrono::{DateTime, TimeDelta, Utc};
use helpdesk_domain::accounts::{Email, Role, validate_new_password};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A user as the rest of the system sees it (never with the password hash).
#[derive(Debug, Clone)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub organization_id: Option<Uuid>,
    pub locale: String,
    pub phone: Option<String>,
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    organization_id: Option<Uuid>,
    locale: String,
    phone: Option<String>,
    terms_version: Option<String>,
    terms_accepted_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = CoreError;
    fn try_from(row: UserRow) -> Result<Self, CoreError> {
        Ok(User {
            role: row.role.parse().map_err(|e| CoreError::Internal(format!("user {}: {e}", row.id)))?,
            id: row.id,
            email: row.email,
            name: row.name,
            organization_id: row.organization_id,
            locale: row.locale,
            phone: row.phone,
            terms_version: row.terms_version,
            terms_accepted_at: row.terms_accepted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Tokens handed to a client after login or refresh.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub access_expires_in: TimeDelta,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: User,
}

/// What authentication needs to know about a user, read fresh from the database.
#[derive(Debug, Clone)]
pub struct AuthRecord {
    pub user_id: Uuid,
    pub role: Role,
    pub organization_id: Option<Uuid>,
    pub disabled: bool,
    pub password_changed_at: DateTime<Utc>,
    /// The terms version the user accepted: customers must hold the current one (R14).
    pub terms_version: Option<String>,
}

impl AuthRecord {
    /// Refuses tokens of disabled accounts and tokens issued before the last password change
    /// (so a reset really ends every session).
    pub fn admit(&self, claims: &tokens::AccessClaims) -> Result<Caller, CoreError> {
        if claims.sub != self.user_id || self.disabled || claims.iat < self.password_changed_at.timestamp() {
            return Err(CoreError::Unauthenticated);
        }
        Ok(Caller { user_id: self.user_id, role: self.role, organization_id: self.organization_id })
    }
}

pub async fn auth_record(pool: &PgPool, user_id: Uuid) -> Result<Option<AuthRecord>, CoreError> {
    let Some(row) = sqlx::query!(
        "SELECT role, organization_id, disabled_at, password_changed_at, terms_version FROM users WHERE id = $1",
        user_id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let role: Role = row.role.parse().map_err(|e| CoreError::Internal(format!("user {user_id}: {e}")))?;
    Ok(Some(AuthRecord {
        user_id,
        role,
        organization_id: row.organization_id,
        disabled: row.disabled_at.is_some(),
        password_changed_at: row.password_changed_at,
        terms_version: row.terms_version,
    }))
}

/// Resolves a verified access token to the caller, against the user row as it is now.
pub async fn authenticate(pool: &PgPool, claims: &tokens::AccessClaims) -> Result<Caller, CoreError> {
    auth_record(pool, claims.sub).await?.ok_or(CoreError::Unauthenticated)?.admit(claims)
}

pub struct Registration {
    pub email: String,
    pub password: String,
    pub name: String,
    pub signup_code: String,
    pub accepted_terms_version: String,
    pub locale: Option<String>,
}

fn parse_email(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<Email> {
    Email::parse(raw).map_err(|e| errors.push(FieldError::new(field, e))).ok()
}

fn check_name(raw: &str, errors: &mut Vec<FieldError>) -> String {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must have between 1 and 200 characters"));
    }
    name
}

fn check_locale(raw: Option<&str>, errors: &mut Vec<FieldError>) -> String {
    match raw {
        None => "pt-BR".to_owned(),
        Some(locale @ ("pt-BR" | "en")) => locale.to_owned(),
        Some(_) => {
            errors.push(FieldError::new("locale", "must be pt-BR or en"));
            "pt-BR".to_owned()
        }
    }
}

fn check_password(field: &str, password: &str, email: Option<&Email>, errors: &mut Vec<FieldError>) {
    if let Err(e) = validate_new_password(password, email) {
        errors.push(FieldError::new(field, e));
    }
}

/// Signs a customer up under the organisation whose active contract holds `signup_code`.
pub async fn register(
    pool: &PgPool,
    input: Registration,
    current_terms: &str,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<User, CoreError> {
    let mut errors = Vec::new();
    let email = parse_email("email", &input.email, &mut errors);
    let name = check_name(&input.name, &mut errors);
    let locale = check_locale(input.locale.as_deref(), &mut errors);
    check_password("password", &input.password, email.as_ref(), &mut errors);
    if input.accepted_terms_version != current_terms {
        errors.push(FieldError::new(
            "accepted_terms_version",
            format!("must be the current terms version, {current_terms}"),
        ));
    }
    if input.signup_code.trim().is_empty() {
        errors.push(FieldError::new("signup_code", "is required"));
    }
    let Some(email) = email else { return Err(CoreError::Validation(errors)) };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }

    let today = crate::sla_store::local_today(pool, now).await?;
    let organization_id = organizations::organization_with_active_signup_code(
        &mut *pool.acquire().await?,
        input.signup_code.trim(),
        today,
    )
    .await?
    .ok_or_else(|| {
        CoreError::forbidden("no_active_contract", "this signup code does not belong to an active contract")
    })?;

    let hash = passwords::hash(input.password).await?;
    let mut tx = pool.begin().await?;
    let user = sqlx::query_as!(
        UserRow,
        // The organisation's first person becomes its admin contact (see admin_contacts).
        r#"INSERT INTO users (id, email, name, password_hash, role, organization_id, locale, terms_version, terms_accepted_at, password_changed_at, created_at, updated_at, admin_contact)
           VALUES ($1, $2, $3, $4, 'customer', $5, $6, $7, $8, $8, $8, $8,
                   NOT EXISTS (SELECT 1 FROM users WHERE organization_id = $5 AND admin_contact AND anonymised_at IS NULL))
           RETURNING id, email, name, role, organization_id, locale, phone, terms_version, terms_accepted_at, created_at, updated_at"#,
        Uuid::now_v7(),
        email.as_str(),
        name,
        hash,
        organization_id,
        locale,
        input.accepted_terms_version,
        now,
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("users_email_key") => CoreError::conflict("email_taken", "an account with this e-mail already exists; sign in or reset the password"),
        _ => CoreError::Database(e),
    })?;
    let user = User::try_from(user)?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user.id),
            action: "user.registered",
            subject_type: "user",
            subject_id: Some(user.id),
            ip,
            details: json!({ "organization_id": organization_id, "terms_version": user.terms_version }),
        },
        now,
    )
    .await?;
    outbox::enqueue(
        &mut tx,
        NewEmail {
            idempotency_key: format!("welcome:{}", user.id),
            to_address: &user.email,
            to_name: Some(&user.name),
            locale: &user.locale,
            template: templates::WELCOME,
            payload: json!({ "name": user.name }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Checks e-mail and password and opens a session. Unknown e-mail, wrong password and disabled
/// account all take the same time and give the same answer.
pub async fn login(
    pool: &PgPool,
    keys: &TokenKeys,
    refresh_ttl: TimeDelta,
    email: &str,
    password: String,
    ip: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Session, CoreError> {
    let email = Email::parse(email).ok();
    let row = match &email {
        Some(email) => {
            sqlx::query!("SELECT id, password_hash, disabled_at FROM users WHERE lower(email) = $1", email.as_str())
                .fetch_optional(pool)
                .await?
        }
        None => None,
    };
    let (user_id, stored, disabled) = match row {
        Some(r) => (Some(r.id), Some(r.password_hash), r.disabled_at.is_some()),
        None => (None, None, false),
    };
    let valid = passwords::verify(password, stored).await?;
    let (Some(user_id), true, false) = (user_id, valid, disabled) else {
        return Err(CoreError::Unauthenticated);
    };
    let mut tx = pool.begin().await?;
    let session = open_session(&mut tx, keys, refresh_ttl, user_id, Uuid::now_v7(), now).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user_id),
            action: "session.login",
            subject_type: "user",
            subject_id: Some(user_id),
            ip,
            details: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

async fn open_session(
    conn: &mut PgConnection,
    keys: &TokenKeys,
    refresh_ttl: TimeDelta,
    user_id: Uuid,
    family_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Session, CoreError> {
    let user = get_user_on(conn, user_id).await?;
    let (refresh_token, hash) = tokens::new_opaque_token();
    let refresh_expires_at = now + refresh_ttl;
    sqlx::query!(
        "INSERT INTO refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::now_v7(),
        family_id,
        user_id,
        hash,
        now,
        refresh_expires_at
    )
    .execute(&mut *conn)
    .await?;
    let access_token = keys.issue_access(user.id, user.role, user.organization_id, now)?;
    Ok(Session { access_token, access_expires_in: keys.access_ttl(), refresh_token, refresh_expires_at, user })
}

/// Rotates a refresh token: the presented one is spent and a new one of the same family issued.
/// Presenting a spent token again means it was stolen or replayed: the whole family is revoked.
pub async fn refresh(
    pool: &PgPool,
    keys: &TokenKeys,
    refresh_ttl: TimeDelta,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Session, CoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        r#"SELECT t.id, t.family_id, t.user_id, t.expires_at, t.used_at, t.revoked_at, u.disabled_at
           FROM refresh_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 FOR UPDATE OF t"#,
        tokens::hash_opaque_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CoreError::Unauthenticated)?;
    if row.used_at.is_some() && row.revoked_at.is_none() {
        revoke_family(&mut tx, row.family_id, now).await?;
        audit::record(
            &mut tx,
            AuditEntry {
                actor_id: Some(row.user_id),
                action: "session.refresh_token_reused",
                subject_type: "user",
                subject_id: Some(row.user_id),
                ip: None,
                details: json!({ "family_id": row.family_id }),
            },
            now,
        )
        .await?;
        tx.commit().await?;
        tracing::warn!(user_id = %row.user_id, family_id = %row.family_id, "refresh token reused; session family revoked");
        return Err(CoreError::Unauthenticated);
    }
    if row.revoked_at.is_some() || row.used_at.is_some() || row.expires_at <= now || row.disabled_at.is_some() {
        return Err(CoreError::Unauthenticated);
    }
    sqlx::query!("UPDATE refresh_tokens SET used_at = $2 WHERE id = $1", row.id, now).execute(&mut *tx).await?;
    let session = open_session(&mut tx, keys, refresh_ttl, row.user_id, row.family_id, now).await?;
    tx.commit().await?;
    Ok(session)
}

async fn revoke_family(conn: &mut PgConnection, family_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn revoke_all_sessions(conn: &mut PgConnection, user_id: Uuid, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query!("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", user_id, now)
        .execute(conn)
        .await?;
    Ok(())
}

/// Ends the session the refresh token belongs to. Unknown tokens are ignored: logging out twice
/// is not an error.
pub async fn logout(pool: &PgPool, token: &str, now: DateTime<Utc>) -> Result<(), CoreError> {
    let mut tx = pool.begin().await?;
    if let Some(row) = sqlx::query!(
        "SELECT family_id, user_id FROM refresh_tokens WHERE token_hash = $1",
        tokens::hash_opaque_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    {
        revoke_family(&mut tx, row.family_id, now).await?;
        audit::record(
            &mut tx,
            AuditEntry {
                actor_id: Some(row.user_id),
                action: "session.logout",
                subject_type: "user",
                subject_id: Some(row.user_id),
                ip: None,
                details: json!({}),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Starts a password reset. Always succeeds from the caller's point of view, so the answer does
/// not reveal whether the e-mail has an account.
pub async fn request_password_reset(
    pool: &PgPool,
    email: &str,
    public_url: &str,
    ttl: TimeDelta,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let Ok(email) = Email::parse(email) else { return Ok(()) };
    let mut tx = pool.begin().await?;
    let user = sqlx::query!(
        "SELECT id, name, locale FROM users WHERE lower(email) = $1 AND disabled_at IS NULL",
        email.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(user) = user {
        let (token, hash) = tokens::new_opaque_token();
        let token_id = Uuid::now_v7();
        sqlx::query!(
            "INSERT INTO password_reset_tokens (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            token_id,
            user.id,
            hash,
            now,
            now + ttl
        )
        .execute(&mut *tx)
        .await?;
        outbox::enqueue(
            &mut tx,
            NewEmail {
                idempotency_key: format!("password-reset:{token_id}"),
                to_address: email.as_str(),
                to_name: Some(&user.name),
                locale: &user.locale,
                template: templates::PASSWORD_RESET,
                payload: json!({
                    "name": user.name,
                    "reset_url": format!("{}/reset-password?token={token}", public_url.trim_end_matches('/')),
                    "token": token,
                    "expires_in_minutes": ttl.num_minutes(),
                }),
            },
            now,
        )
        .await?;
        audit::record(
            &mut tx,
            AuditEntry {
                actor_id: None,
                action: "user.password_reset_requested",
                subject_type: "user",
                subject_id: Some(user.id),
                ip: None,
                details: json!({}),
            },
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Completes a reset: the token is single-use and expires; every session of the user ends.
pub async fn confirm_password_reset(
    pool: &PgPool,
    token: &str,
    new_password: String,
    now: DateTime<Utc>,
) -> Result<Uuid, CoreError> {
    let mut tx = pool.begin().await?;
    let row = sqlx::query!(
        r#"SELECT t.id, t.user_id, t.expires_at, t.used_at, u.email
           FROM password_reset_tokens t JOIN users u ON u.id = t.user_id
           WHERE t.token_hash = $1 FOR UPDATE OF t"#,
        tokens::hash_opaque_token(token)
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|r| r.used_at.is_none() && r.expires_at > now)
    .ok_or_else(|| CoreError::invalid("token", "is invalid, expired or already used"))?;
    let mut errors = Vec::new();
    check_password("new_password", &new_password, Email::parse(&row.email).ok().as_ref(), &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let hash = passwords::hash(new_password).await?;
    sqlx::query!(
        "UPDATE password_reset_tokens SET used_at = $2 WHERE user_id = $1 AND used_at IS NULL",
        row.user_id,
        now
    )
    .execute(&mut *tx)
    .await?;
    set_password(&mut tx, row.user_id, &hash, now).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(row.user_id),
            action: "user.password_reset",
            subject_type: "user",
            subject_id: Some(row.user_id),
            ip: None,
            details: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(row.user_id)
}

async fn set_password(
    conn: &mut PgConnection,
    user_id: Uuid,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, password_changed_at = $3, updated_at = $3 WHERE id = $1",
        user_id,
        hash,
        now
    )
    .execute(&mut *conn)
    .await?;
    revoke_all_sessions(conn, user_id, now).await
}

/// Changes the caller's password after checking the current one; every session ends, including
/// this one, so a stolen session cannot survive the change.
pub async fn change_password(
    pool: &PgPool,
    user_id: Uuid,
    current: String,
    new_password: String,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let row = sqlx::query!("SELECT email, password_hash FROM users WHERE id = $1", user_id)
        .fetch_optional(pool)
        .await?
        .ok_or(CoreError::NotFound("user"))?;
    if !passwords::verify(current, Some(row.password_hash)).await? {
        return Err(CoreError::invalid("current_password", "is not the current password"));
    }
    let mut errors = Vec::new();
    check_password("new_password", &new_password, Email::parse(&row.email).ok().as_ref(), &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let hash = passwords::hash(new_password).await?;
    let mut tx = pool.begin().await?;
    set_password(&mut tx, user_id, &hash, now).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user_id),
            action: "user.password_changed",
            subject_type: "user",
            subject_id: Some(user_id),
            ip: None,
            details: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn get_user_on(conn: &mut PgConnection, id: Uuid) -> Result<User, CoreError> {
    let row = sqlx::query_as!(
        UserRow,
        "SELECT id, email, name, role, organization_id, locale, phone, terms_version, terms_accepted_at, created_at, updated_at FROM users WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(CoreError::NotFound("user"))?;
    User::try_from(row)
}

pub async fn get_user(pool: &PgPool, id: Uuid) -> Result<User, CoreError> {
    let mut conn = pool.acquire().await?;
    get_user_on(&mut conn, id).await
}

/// Fields a user may change on their own profile (R1: they keep it up to date). Role,
/// organisation and e-mail are not among them.
#[derive(Debug, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub phone: Option<Option<String>>,
    pub locale: Option<String>,
}

pub async fn update_profile(
    pool: &PgPool,
    user_id: Uuid,
    update: ProfileUpdate,
    now: DateTime<Utc>,
) -> Result<User, CoreError> {
    let mut errors = Vec::new();
    let name = update.name.as_deref().map(|n| check_name(n, &mut errors));
    let locale = update.locale.as_deref().map(|l| check_locale(Some(l), &mut errors));
    let phone = update.phone.map(|p| p.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()));
    if let Some(Some(p)) = &phone
        && (p.chars().count() > 40 || !p.chars().all(|c| c.is_ascii_digit() || " +()-.".contains(c)))
    {
        errors.push(FieldError::new("phone", "must be at most 40 characters of digits, spaces and + ( ) - ."));
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        UserRow,
        r#"UPDATE users SET
               name = COALESCE($2, name),
               locale = COALESCE($3, locale),
               phone = CASE WHEN $4 THEN $5 ELSE phone END,
               updated_at = $6
           WHERE id = $1
           RETURNING id, email, name, role, organization_id, locale, phone, terms_version, terms_accepted_at, created_at, updated_at"#,
        user_id,
        name,
        locale,
        phone.is_some(),
        phone.flatten(),
        now
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(CoreError::NotFound("user"))?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(user_id),
            action: "user.profile_updated",
            subject_type: "user",
            subject_id: Some(user_id),
            ip: None,
            details: json!({}),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    User::try_from(row)
}

pub struct NewStaffUser {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub password: String,
    pub locale: Option<String>,
}

/// An administrator creates an agent or another administrator.
pub async fn create_staff_user(
    pool: &PgPool,
    actor: Option<Uuid>,
    input: NewStaffUser,
    now: DateTime<Utc>,
) -> Result<User, CoreError> {
    let mut errors = Vec::new();
    let email = parse_email("email", &input.email, &mut errors);
    let name = check_name(&input.name, &mut errors);
    let locale = check_locale(input.locale.as_deref(), &mut errors);
    check_password("password", &input.password, email.as_ref(), &mut errors);
    if !input.role.is_staff() {
        errors
            .push(FieldError::new("role", "must be agent or admin; customers sign up with their organisation's code"));
    }
    let Some(email) = email else { return Err(CoreError::Validation(errors)) };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let hash = passwords::hash(input.password).await?;
    let mut tx = pool.begin().await?;
    let row = sqlx::query_as!(
        UserRow,
        r#"INSERT INTO users (id, email, name, password_hash, role, locale, password_changed_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $7)
           RETURNING id, email, name, role, organization_id, locale, phone, terms_version, terms_accepted_at, created_at, updated_at"#,
        Uuid::now_v7(),
        email.as_str(),
        name,
        hash,
        input.role.as_str(),
        locale,
        now
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match violated_constraint(&e) {
        Some("users_email_key") => CoreError::conflict("email_taken", "an account with this e-mail already exists"),
        _ => CoreError::Database(e),
    })?;
    let user = User::try_from(row)?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: actor,
            action: "user.created",
            subject_type: "user",
            subject_id: Some(user.id),
            ip: None,
            details: json!({ "role": user.role }),
        },
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(user)
}

/// Creates the first administrator from configuration when there is none yet; a no-op otherwise.
pub async fn ensure_bootstrap_admin(
    pool: &PgPool,
    email: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Option<User>, CoreError> {
    let admins =
        sqlx::query_scalar!(r#"SELECT count(*) AS "count!" FROM users WHERE role = 'admin'"#).fetch_one(pool).await?;
    if admins > 0 {
        return Ok(None);
    }
    let input = NewStaffUser {
        email: email.to_owned(),
        name: "Administrator".into(),
        role: Role::Admin,
        password: password.to_owned(),
        locale: None,
    };
    match create_staff_user(pool, None, input, now).await {
        Ok(user) => Ok(Some(user)),
        // Another instance won the race.
        Err(CoreError::Conflict { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub organization_id: Option<Uuid>,
}

pub async fn list_users(
    pool: &PgPool,
    filter: UserFilter,
    page: PageRequest,
) -> Result<(Vec<User>, Option<String>), CoreError> {
    let (after_at, after_id) = page.after.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let rows = sqlx::query_as!(
        UserRow,
        r#"SELECT id, email, name, role, organization_id, locale, phone, terms_version, terms_accepted_at, created_at, updated_at
           FROM users
           WHERE ($1::text IS NULL OR role = $1)
             AND ($2::uuid IS NULL OR organization_id = $2)
             AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4))
           ORDER BY created_at, id
           LIMIT $5"#,
        filter.role.map(Role::as_str),
        filter.organization_id,
        after_at,
        after_id,
        page.fetch_limit()
    )
    .fetch_all(pool)
    .await?;
    let users = rows.into_iter().map(User::try_from).collect::<Result<Vec<_>, _>>()?;
    Ok(pagination::finish(users, &page, |u| (u.created_at, u.id)))
}
