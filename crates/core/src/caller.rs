//! Who is making a request, and the role checks every operation starts with. Its own module so
//! that every aggregate (accounts, organisations, tickets…) can take a caller without importing
//! the others.

use helpdesk_domain::accounts::Role;
use uuid::Uuid;

use crate::CoreError;

/// The authenticated caller of a request, as re-checked against the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
    pub organization_id: Option<Uuid>,
}

impl Caller {
    pub fn require_admin(&self) -> Result<(), CoreError> {
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(CoreError::forbidden("admin_only", "this action needs an administrator"))
        }
    }

    pub fn require_staff(&self) -> Result<(), CoreError> {
        if self.role.is_staff() {
            Ok(())
        } else {
            Err(CoreError::forbidden("staff_only", "this action needs an agent or administrator"))
        }
    }

    /// Customers see only their own organisation; anything else is answered as not found, so
    /// the existence of other organisations' data never leaks.
    pub fn may_see_organization(&self, organization_id: Uuid) -> bool {
        self.role.may_see_organization(self.organization_id, organization_id)
    }
}
