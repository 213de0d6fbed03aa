//! Plans are entitlements (DESIGN R2): what an organisation's contract lets it ask for.

use serde::{Deserialize, Serialize};

/// The entitlements a plan (or a contract add-on) grants. Rows in the database, checked here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlements {
    /// Pro and Premium: technical support tickets. Essencial has customer service only.
    pub technical_support: bool,
    /// Premium: "Atendimento Prioritário", emergency tickets counted 24×7 that page on-call.
    pub emergency_priority: bool,
    /// Video-call consultancy meetings per month; zero means not included.
    pub consultancy_meetings_per_month: u32,
}

/// What kind of request a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Category {
    /// Customer service: billing, commercial, account. Every plan has it.
    Service,
    /// Technical support: Pro and Premium.
    Technical,
}

impl Category {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Service => "service",
            Category::Technical => "technical",
        }
    }
}

/// The entitlement a refused request lacks; its name is part of the API's error contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
pub enum MissingEntitlement {
    #[error("the organisation has no active contract")]
    NoActiveContract,
    #[error("the plan does not include technical support")]
    TechnicalSupport,
    #[error("the plan does not include emergency priority")]
    EmergencyPriority,
    #[error("the plan does not include consultancy meetings")]
    ConsultancyMeetings,
}

impl MissingEntitlement {
    pub fn code(self) -> &'static str {
        match self {
            MissingEntitlement::NoActiveContract => "no_active_contract",
            MissingEntitlement::TechnicalSupport => "technical_support",
            MissingEntitlement::EmergencyPriority => "emergency_priority",
            MissingEntitlement::ConsultancyMeetings => "consultancy_meetings",
        }
    }
}

impl Entitlements {
    /// May an organisation holding these entitlements open this ticket?
    pub fn check_ticket(&self, category: Category, emergency: bool) -> Result<(), MissingEntitlement> {
        if category == Category::Technical && !self.technical_support {
            return Err(MissingEntitlement::TechnicalSupport);
        }
        if emergency && !self.emergency_priority {
            return Err(MissingEntitlement::EmergencyPriority);
        }
        Ok(())
    }

    /// May the organisation book another meeting, having booked `used` this month?
    pub fn check_meeting(&self, used: u32) -> Result<(), MissingEntitlement> {
        if used < self.consultancy_meetings_per_month { Ok(()) } else { Err(MissingEntitlement::ConsultancyMeetings) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ESSENCIAL: Entitlements =
        Entitlements { technical_support: false, emergency_priority: false, consultancy_meetings_per_month: 0 };
    const PRO: Entitlements =
        Entitlements { technical_support: true, emergency_priority: false, consultancy_meetings_per_month: 1 };
    const PREMIUM: Entitlements =
        Entitlements { technical_support: true, emergency_priority: true, consultancy_meetings_per_month: 2 };

    #[test]
    fn essencial_has_customer_service_only() {
        assert_eq!(ESSENCIAL.check_ticket(Category::Service, false), Ok(()));
        assert_eq!(ESSENCIAL.check_ticket(Category::Technical, false), Err(MissingEntitlement::TechnicalSupport));
    }

    #[test]
    fn only_premium_flags_emergencies() {
        assert_eq!(PRO.check_ticket(Category::Technical, false), Ok(()));
        assert_eq!(PRO.check_ticket(Category::Technical, true), Err(MissingEntitlement::EmergencyPriority));
        assert_eq!(PREMIUM.check_ticket(Category::Technical, true), Ok(()));
    }

    #[test]
    fn meeting_quota_is_per_month() {
        assert_eq!(PRO.check_meeting(0), Ok(()));
        assert_eq!(PRO.check_meeting(1), Err(MissingEntitlement::ConsultancyMeetings));
        assert_eq!(ESSENCIAL.check_meeting(0), Err(MissingEntitlement::ConsultancyMeetings));
    }
}
