//! Which subscription receives which event. The organisation filter is the isolation rule: a
//! subscription scoped to one organisation receives that organisation's events only, plus the
//! events about no organisation that every customer may see (a maintenance window over every
//! site). Events of another organisation never reach it.

use uuid::Uuid;

use super::events::EventType;

/// What a subscription asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionFilter {
    /// Empty: every subscribable type.
    pub event_types: Vec<EventType>,
    /// `None`: events of every organisation.
    pub organization_id: Option<Uuid>,
}

impl SubscriptionFilter {
    /// Whether an event of `event_type` about `organization_id` goes to this subscription. Pings
    /// are addressed to one subscription and never routed by filter.
    pub fn receives(&self, event_type: EventType, organization_id: Option<Uuid>) -> bool {
        if event_type == EventType::Ping {
            return false;
        }
        let wanted = self.event_types.is_empty() || self.event_types.contains(&event_type);
        let visible = match (self.organization_id, organization_id) {
            (None, _) => true,
            (Some(scope), Some(org)) => scope == org,
            (Some(_), None) => event_type == EventType::MaintenanceScheduled,
        };
        wanted && visible
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_type() -> impl Strategy<Value = EventType> {
        proptest::sample::select(EventType::ALL.to_vec())
    }

    fn any_org() -> impl Strategy<Value = Option<Uuid>> {
        proptest::option::of(proptest::sample::select(vec![Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)]))
    }

    proptest! {
        #[test]
        fn a_scoped_subscription_never_sees_another_organisations_event(
            types in proptest::collection::vec(any_type(), 0..5),
            scope in any_org(),
            event_type in any_type(),
            org in any_org(),
        ) {
            let filter = SubscriptionFilter { event_types: types.clone(), organization_id: scope };
            let received = filter.receives(event_type, org);
            if let (Some(scope), Some(org)) = (scope, org) && scope != org {
                prop_assert!(!received);
            }
            if received {
                prop_assert!(types.is_empty() || types.contains(&event_type));
                prop_assert!(event_type != EventType::Ping);
            }
            if scope.is_some() && org.is_none() && event_type != EventType::MaintenanceScheduled {
                prop_assert!(!received);
            }
        }

        #[test]
        fn an_unscoped_subscription_gets_every_type_it_asked_for(event_type in any_type(), org in any_org()) {
            let filter = SubscriptionFilter { event_types: vec![event_type], organization_id: None };
            prop_assert_eq!(filter.receives(event_type, org), event_type != EventType::Ping);
        }
    }
}

/// Plain `http` is accepted for a subscription only when every address its host resolves to is
/// in the egress allow-list (a receiver on the local network, or a test's); anything public must
/// use `https`, so payloads and signatures never cross the internet in clear.
pub fn plain_http_allowed(policy: &crate::egress::EgressPolicy, addresses: &[std::net::IpAddr]) -> bool {
    !addresses.is_empty() && addresses.iter().all(|address| policy.allowed().iter().any(|net| net.contains(address)))
}

#[cfg(test)]
mod http_tests {
    use super::*;
    use crate::egress::EgressPolicy;

    #[test]
    fn plain_http_needs_every_address_allow_listed() {
        let local: std::net::IpAddr = [127, 0, 0, 1].into();
        let public: std::net::IpAddr = [93, 184, 216, 34].into();
        let policy = EgressPolicy::parse("127.0.0.0/8").unwrap_or_else(|e| panic!("{e}"));
        assert!(plain_http_allowed(&policy, &[local]));
        assert!(!plain_http_allowed(&policy, &[local, public]));
        assert!(!plain_http_allowed(&policy, &[]));
        assert!(!plain_http_allowed(&EgressPolicy::strict(), &[local]));
    }
}
