//! Response and shared request shapes. Request bodies reject unknown fields, so a client that
//! tries to set `role` or `organization_id` gets a 422 naming the field instead of silent
//! acceptance.

use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_core::accounts::User;
use helpdesk_core::organizations::{Contract, Organization, Plan};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    #[schema(example = "customer")]
    pub role: String,
    pub organization_id: Option<Uuid>,
    #[schema(example = "pt-BR")]
    pub locale: String,
    pub phone: Option<String>,
    /// The terms and privacy policy version accepted at sign-up (customers).
    pub terms_version: Option<String>,
    pub terms_accepted_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        UserView {
            id: u.id,
            email: u.email,
            name: u.name,
            role: u.role.as_str().to_owned(),
            organization_id: u.organization_id,
            locale: u.locale,
            phone: u.phone,
            terms_version: u.terms_version,
            terms_accepted_at: u.terms_accepted_at,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}

/// The caller's own profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: UserView,
    /// Named by the organisation to speak for it (customers); the last one hands over before
    /// leaving.
    pub admin_contact: bool,
    /// The terms and privacy notice in force now.
    #[schema(example = "2026-01")]
    pub terms_current_version: String,
    /// True while the caller must accept `terms_current_version` (POST /v1/me/terms); until then
    /// every other route answers 403 `terms_not_accepted`.
    pub terms_acceptance_required: bool,
}

impl MeView {
    pub fn new(user: User, admin_contact: bool, current_terms: &str) -> Self {
        let required =
            helpdesk_domain::privacy::must_accept_terms(user.role, user.terms_version.as_deref(), current_terms);
        MeView {
            user: user.into(),
            admin_contact,
            terms_current_version: current_terms.to_owned(),
            terms_acceptance_required: required,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PlanView {
    pub id: Uuid,
    #[schema(example = "pro")]
    pub code: String,
    #[schema(example = "Pro")]
    pub name: String,
    pub technical_support: bool,
    pub emergency_priority: bool,
    pub consultancy_meetings_per_month: u32,
}

impl From<Plan> for PlanView {
    fn from(p: Plan) -> Self {
        PlanView {
            id: p.id,
            code: p.code,
            name: p.name,
            technical_support: p.entitlements.technical_support,
            emergency_priority: p.entitlements.emergency_priority,
            consultancy_meetings_per_month: p.entitlements.consultancy_meetings_per_month,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationView {
    pub id: Uuid,
    pub name: String,
    /// Code of the plan of the contract in force today; absent without one.
    pub active_plan: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Organization> for OrganizationView {
    fn from(o: Organization) -> Self {
        OrganizationView {
            id: o.id,
            name: o.name,
            active_plan: o.active_plan,
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationPage {
    pub items: Vec<OrganizationView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContractView {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(example = "premium")]
    pub plan: String,
    pub starts_on: NaiveDate,
    /// Exclusive end date; absent for an open-ended contract.
    pub ends_on: Option<NaiveDate>,
    /// Whether the contract is in force today (São Paulo date).
    pub active: bool,
    /// The code customers sign up with; shown to staff only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "ABCD-EFGH-JKMN")]
    pub signup_code: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl ContractView {
    pub fn new(c: Contract, today: NaiveDate, show_code: bool) -> Self {
        ContractView {
            active: c.is_active_on(today),
            id: c.id,
            organization_id: c.organization_id,
            plan: c.plan_code,
            starts_on: c.starts_on,
            ends_on: c.ends_on,
            signup_code: show_code.then_some(c.signup_code),
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Distinguishes an absent field (leave unchanged) from an explicit `null` (clear it).
pub fn double_option<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}
