//! Plans and their entitlements (R2).

use super::dto::PlanView;
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use helpdesk_core::organizations;

/// The plans on offer and what each entitles.
#[utoipa::path(tag = "plans", security(("bearer" = [])), responses((status = 200, description = "OK", body = Vec<PlanView>)))]
#[get("/v1/plans")]
pub async fn list_plans(state: web::Data<AppState>, _caller: Authenticated) -> Result<HttpResponse, ApiError> {
    let plans: Vec<PlanView> = crate::tx::read(&state.pool, async |c| organizations::list_plans(c).await)
        .await?
        .into_iter()
        .map(PlanView::from)
        .collect();
    Ok(HttpResponse::Ok().json(plans))
}
