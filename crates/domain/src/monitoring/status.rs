//! The words monitoring stores and shows. Each enum has the spelling used in the database
//! (`as_str`) and parses it back (`parse`), so SQL text columns and Rust agree in one place.

use serde::{Deserialize, Serialize};

macro_rules! stored_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// Parses the stored spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum! {
    /// A monitor's current state (`monitors.state`).
    MonitorStatus {
        /// Not probed yet, or resumed and not probed since.
        Unknown => "unknown",
        Up => "up",
        /// Answering as expected, but slower than the latency threshold.
        Degraded => "degraded",
        /// Confirmed down (two consecutive failures).
        Down => "down",
    }
}

stored_enum! {
    /// Why a probe failed (`monitor_checks.error_kind`, `monitors.last_check_error_kind`).
    ProbeErrorKind {
        Timeout => "timeout",
        Dns => "dns",
        Connect => "connect",
        Tls => "tls",
        /// The status code was not one of the expected ones.
        Status => "status",
        /// The keyword was missing (mode `present`) or found (mode `absent`).
        Keyword => "keyword",
        /// The egress guard refused the resolved address.
        Blocked => "blocked",
    }
}

stored_enum! {
    /// Whether a monitor's keyword must be present in the body or absent from it.
    KeywordMode {
        Present => "present",
        Absent => "absent",
    }
}

stored_enum! {
    /// What an incident is about (`incidents.kind`).
    IncidentKind {
        /// A downtime: counts against uptime once confirmed.
        Down => "down",
        /// A TLS certificate close to expiry: a warning, never a downtime.
        TlsExpiring => "tls_expiring",
    }
}

stored_enum! {
    /// The alerts an incident may send, each at most once (`incident_alerts.kind`).
    AlertKind {
        Down => "down",
        /// Down for more than 15 minutes.
        Down15m => "down_15m",
        /// Down for 2 hours: emergency ticket and on-call page.
        Down2h => "down_2h",
        Recovered => "recovered",
        TlsExpiring => "tls_expiring",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_spellings_round_trip_and_match_serde() {
        for s in MonitorStatus::ALL {
            assert_eq!(MonitorStatus::parse(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(s.as_str())));
        }
        for k in ProbeErrorKind::ALL {
            assert_eq!(ProbeErrorKind::parse(k.as_str()), Some(*k));
        }
        for k in AlertKind::ALL {
            assert_eq!(AlertKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).ok(), Some(serde_json::Value::from(k.as_str())));
        }
        for k in IncidentKind::ALL {
            assert_eq!(IncidentKind::parse(k.as_str()), Some(*k));
        }
        assert_eq!(KeywordMode::parse("absent"), Some(KeywordMode::Absent));
        assert_eq!(MonitorStatus::parse("sideways"), None);
    }
}
