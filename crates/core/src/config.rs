//! Configuration from environment variables, with defaults that work on a developer's machine.
//! Every variable is listed in README.md.

use chrono::TimeDelta;
use std::collections::HashMap;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(
        "HELPDESK_JWT_SECRET is not set: set it to a random string of at least 32 characters, or set HELPDESK_DEV_MODE=true on a developer machine"
    )]
    MissingJwtSecret,
}

/// A secret that never appears in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone)]
pub struct RateLimit {
    pub max: u32,
    pub window_seconds: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key this deployment writes (rate limits, queues), so several
    /// deployments or test runs can share one Redis.
    pub redis_prefix: String,
    pub smtp_url: String,
    pub mail_from: String,
    pub listen: SocketAddr,
    pub worker_listen: SocketAddr,
    pub public_url: String,
    pub dev_mode: bool,
    pub jwt_secret: Secret,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: TimeDelta,
    pub refresh_token_ttl: TimeDelta,
    pub password_reset_ttl: TimeDelta,
    pub admin_email: Option<String>,
    pub admin_password: Option<Secret>,
    pub log_json: bool,
    /// Trust `X-Forwarded-For` for the client address (only behind a proxy that sets it).
    pub trust_proxy: bool,
    pub max_body_bytes: usize,
    /// Browser origins (`https://app.example.com`) allowed to call the API cross-origin (CORS);
    /// empty, the default, allows none.
    pub cors_origins: Vec<String>,
    /// PostgreSQL connections per process. A few per core is best: PostgreSQL serves them on the
    /// same cores, and more backends only add contention.
    pub db_pool_size: u32,
    /// How long the API may reuse a user's authentication record (role, disabled, password
    /// change) before reading it again; 0 reads it on every request.
    pub auth_cache_ttl: std::time::Duration,
    /// Sign-in and sign-up attempts per account e-mail: tight, against password guessing.
    pub auth_rate_limit: RateLimit,
    /// The same attempts per client address: looser, because an office signs in from one NAT
    /// address (refresh and password-reset confirmation are counted per address only).
    pub auth_ip_rate_limit: RateLimit,
    /// Requests per window per authenticated caller, on every authenticated route.
    pub api_rate_limit: RateLimit,
    pub current_terms_version: String,
    /// The video-call link of a meeting (R13): `{room}` is replaced with a random room name made
    /// at booking, which the meeting keeps across reschedules.
    pub meeting_url_template: String,
    /// Where contact-form requests are e-mailed (the commercial team, R1).
    pub commercial_email: String,
    /// Contact-form submissions per client address and window.
    pub contact_rate_limit: RateLimit,
    /// The least time between serving the contact form and its submission: faster is a robot.
    pub contact_min_fill_time: TimeDelta,
    /// Internal addresses that monitor probes and webhook deliveries may reach anyway
    /// (`HELPDESK_EGRESS_ALLOW_CIDRS`); empty, the default, refuses them all (the SSRF guard).
    pub egress: helpdesk_domain::egress::EgressPolicy,
    /// A PEM file of extra root certificates that probes and webhook deliveries trust besides the
    /// system's (`HELPDESK_EGRESS_CA_FILE`): sites behind a private CA. Read by the worker.
    pub egress_ca_file: Option<String>,
    /// How far ahead of the wall clock the process runs (`HELPDESK_CLOCK_OFFSET_SECONDS`): only
    /// with `HELPDESK_DEV_MODE`, for the system tests' worker to reach timers days away.
    pub clock_offset: TimeDelta,
    /// A target the operator runs outside customers' networks (`HELPDESK_PROBE_CANARY_URL`):
    /// when most probes fail in the same minute and this fails too, the fault is our network
    /// (storm guard). Unset, the storm guard is off.
    pub probe_canary_url: Option<String>,
    /// Days raw probe results are kept before their daily partition is dropped
    /// (`HELPDESK_PROBE_RETENTION_DAYS`, default 30).
    pub probe_retention_days: u32,
}

/// Variables that earlier versions read and this one does not, with where the setting went. A
/// process that finds one refuses to start rather than silently ignore what the operator asked.
const MOVED: &[(&str, &str)] = &[
    ("HELPDESK_REMINDER_HOURS", "R8's delays are part of the SLA policy: PUT /v1/sla-policy with reminder_after_hours"),
    (
        "HELPDESK_AUTO_CLOSE_HOURS",
        "R8's delays are part of the SLA policy: PUT /v1/sla-policy with auto_close_after_hours",
    ),
];

const DEV_JWT_SECRET: &str = "dev-mode-only-secret-do-not-use-in-production";

impl Config {
    /// The clock a binary runs on: the wall clock, ahead by `clock_offset` in development.
    pub fn clock(&self) -> crate::Clock {
        if self.clock_offset.is_zero() { crate::Clock::system() } else { crate::Clock::offset(self.clock_offset) }
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    /// Reads configuration from a map of variables (the environment, or a test's own).
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let text = |name: &str, default: &str| get(name).unwrap_or_else(|| default.to_owned());
        if let Some((name, place)) = MOVED.iter().find(|(name, _)| get(name).is_some()) {
            return Err(ConfigError::Invalid { name, reason: format!("is no longer read: {place}") });
        }
        let flag = |name: &'static str| -> Result<bool, ConfigError> {
            match get(name).as_deref() {
                None | Some("0" | "false" | "no") => Ok(false),
                Some("1" | "true" | "yes") => Ok(true),
                Some(other) => {
                    Err(ConfigError::Invalid { name, reason: format!("expected true or false, got '{other}'") })
                }
            }
        };
        let number = |name: &'static str, default: i64| -> Result<i64, ConfigError> {
            get(name).map_or(Ok(default), |v| {
                v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ConfigError::Invalid {
                    name,
                    reason: format!("expected a positive whole number, got '{v}'"),
                })
            })
        };
        let address = |name: &'static str, default: &str| -> Result<SocketAddr, ConfigError> {
            text(name, default)
                .parse()
                .map_err(|e| ConfigError::Invalid { name, reason: format!("expected host:port ({e})") })
        };

        let dev_mode = flag("HELPDESK_DEV_MODE")?;
        let jwt_secret = match get("HELPDESK_JWT_SECRET") {
            Some(secret) if secret.len() >= 32 => Secret::new(secret),
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "HELPDESK_JWT_SECRET",
                    reason: "must have at least 32 characters".into(),
                });
            }
            None if dev_mode => Secret::new(DEV_JWT_SECRET),
            None => return Err(ConfigError::MissingJwtSecret),
        };
        let log_format = text("HELPDESK_LOG_FORMAT", "pretty");
        if !matches!(log_format.as_str(), "pretty" | "json") {
            return Err(ConfigError::Invalid {
                name: "HELPDESK_LOG_FORMAT",
                reason: format!("expected json or pretty, got '{log_format}'"),
            });
        }
        let public_url = text("HELPDESK_PUBLIC_URL", "http://localhost:8080");
        let cors_origins = cors_origins(get("HELPDESK_CORS_ORIGINS").as_deref().unwrap_or(""))?;
        let clock_offset = match get("HELPDESK_CLOCK_OFFSET_SECONDS") {
            None => TimeDelta::zero(),
            Some(_) if !dev_mode => {
                return Err(ConfigError::Invalid {
                    name: "HELPDESK_CLOCK_OFFSET_SECONDS",
                    reason: "moves the clock, so it is only read with HELPDESK_DEV_MODE=true".into(),
                });
            }
            Some(_) => TimeDelta::seconds(number("HELPDESK_CLOCK_OFFSET_SECONDS", 1)?),
        };
        Ok(Config {
            database_url: text("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/helpdesk"),
            redis_url: text("REDIS_URL", "redis://127.0.0.1:6379"),
            redis_prefix: text("HELPDESK_REDIS_PREFIX", "helpdesk"),
            smtp_url: text("SMTP_URL", "smtp://127.0.0.1:1025"),
            mail_from: text("HELPDESK_MAIL_FROM", "Kadix Atendimento <atendimento@kadix.com.br>"),
            listen: address("HELPDESK_LISTEN", "127.0.0.1:8080")?,
            worker_listen: address("HELPDESK_WORKER_LISTEN", "127.0.0.1:9090")?,
            jwt_issuer: public_url.clone(),
            jwt_audience: text("HELPDESK_JWT_AUDIENCE", "helpdesk-api"),
            public_url,
            dev_mode,
            jwt_secret,
            access_token_ttl: TimeDelta::seconds(number("HELPDESK_ACCESS_TOKEN_TTL_SECONDS", 15 * 60)?),
            refresh_token_ttl: TimeDelta::days(number("HELPDESK_REFRESH_TOKEN_TTL_DAYS", 30)?),
            password_reset_ttl: TimeDelta::minutes(number("HELPDESK_PASSWORD_RESET_TTL_MINUTES", 60)?),
            admin_email: get("HELPDESK_ADMIN_EMAIL"),
            admin_password: get("HELPDESK_ADMIN_PASSWORD").map(Secret::new),
            log_json: log_format == "json",
            trust_proxy: flag("HELPDESK_TRUST_PROXY")?,
            max_body_bytes: usize::try_from(number("HELPDESK_MAX_BODY_BYTES", 256 * 1024)?).unwrap_or(256 * 1024),
            cors_origins,
            db_pool_size: u32::try_from(number("HELPDESK_DB_POOL_SIZE", 10)?).unwrap_or(10),
            auth_cache_ttl: std::time::Duration::from_millis(match get("HELPDESK_AUTH_CACHE_MS").as_deref() {
                Some("0") => 0,
                _ => u64::try_from(number("HELPDESK_AUTH_CACHE_MS", 1000)?).unwrap_or(1000),
            }),
            auth_rate_limit: RateLimit {
                max: u32::try_from(number("HELPDESK_AUTH_RATE_LIMIT", 10)?).unwrap_or(10),
                window_seconds: u32::try_from(number("HELPDESK_AUTH_RATE_WINDOW_SECONDS", 60)?).unwrap_or(60),
            },
            auth_ip_rate_limit: RateLimit {
                max: u32::try_from(number("HELPDESK_AUTH_IP_RATE_LIMIT", 100)?).unwrap_or(100),
                window_seconds: u32::try_from(number("HELPDESK_AUTH_RATE_WINDOW_SECONDS", 60)?).unwrap_or(60),
            },
            api_rate_limit: RateLimit {
                max: u32::try_from(number("HELPDESK_API_RATE_LIMIT", 600)?).unwrap_or(600),
                window_seconds: u32::try_from(number("HELPDESK_API_RATE_WINDOW_SECONDS", 60)?).unwrap_or(60),
            },
            current_terms_version: text("HELPDESK_TERMS_VERSION", "2026-01"),
            meeting_url_template: meeting_url_template(text(
                "HELPDESK_MEETING_URL_TEMPLATE",
                "https://meet.jit.si/kadix-{room}",
            ))?,
            commercial_email: text("HELPDESK_COMMERCIAL_EMAIL", "comercial@kadix.com.br"),
            contact_rate_limit: RateLimit {
                max: u32::try_from(number("HELPDESK_CONTACT_RATE_LIMIT", 5)?).unwrap_or(5),
                window_seconds: u32::try_from(number("HELPDESK_CONTACT_RATE_WINDOW_SECONDS", 3600)?).unwrap_or(3600),
            },
            contact_min_fill_time: TimeDelta::seconds(number("HELPDESK_CONTACT_MIN_FILL_SECONDS", 3)?),
            egress: helpdesk_domain::egress::EgressPolicy::parse(
                get("HELPDESK_EGRESS_ALLOW_CIDRS").as_deref().unwrap_or(""),
            )
            .map_err(|e| ConfigError::Invalid { name: "HELPDESK_EGRESS_ALLOW_CIDRS", reason: e.to_string() })?,
            egress_ca_file: get("HELPDESK_EGRESS_CA_FILE"),
            clock_offset,
            probe_canary_url: get("HELPDESK_PROBE_CANARY_URL"),
            probe_retention_days: u32::try_from(number("HELPDESK_PROBE_RETENTION_DAYS", 30)?.clamp(1, 3650))
                .unwrap_or(30),
        })
    }
}

/// A meeting link template must name the room, or every meeting would share one call.
fn meeting_url_template(template: String) -> Result<String, ConfigError> {
    let scheme_ok = template.starts_with("https://") || template.starts_with("http://");
    if template.contains("{room}") && scheme_ok {
        Ok(template)
    } else {
        Err(ConfigError::Invalid {
            name: "HELPDESK_MEETING_URL_TEMPLATE",
            reason: format!("expected an http(s) URL containing {{room}}, got '{template}'"),
        })
    }
}

/// A comma-separated list of origins: scheme, host and optional port, nothing else, because a
/// browser compares the `Origin` header with them byte for byte.
fn cors_origins(list: &str) -> Result<Vec<String>, ConfigError> {
    list.split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(|origin| {
            let rest = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains('/') && !host.contains('*') => Ok(origin.to_owned()),
                _ => Err(ConfigError::Invalid {
                    name: "HELPDESK_CORS_ORIGINS",
                    reason: format!(
                        "expected origins like https://app.example.com:8443 (no path, no wildcard), got '{origin}'"
                    ),
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_clock_offset_is_read_only_in_dev_mode() -> Result<(), ConfigError> {
        let offset = ("HELPDESK_CLOCK_OFFSET_SECONDS", "3600");
        let refused = Config::from_map(&vars(&[offset, ("HELPDESK_JWT_SECRET", &"s".repeat(40))]));
        assert!(matches!(refused, Err(ConfigError::Invalid { name: "HELPDESK_CLOCK_OFFSET_SECONDS", .. })));
        let config = Config::from_map(&vars(&[offset, ("HELPDESK_DEV_MODE", "true")]))?;
        assert_eq!(config.clock_offset, TimeDelta::hours(1));
        assert_eq!(Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true")]))?.clock_offset, TimeDelta::zero());
        Ok(())
    }

    #[test]
    fn refuses_to_start_without_a_secret_outside_dev_mode() {
        assert!(matches!(Config::from_map(&vars(&[])), Err(ConfigError::MissingJwtSecret)));
        assert!(Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true")])).is_ok());
    }

    #[test]
    fn defaults_point_at_local_services() -> Result<(), ConfigError> {
        let config = Config::from_map(&vars(&[("HELPDESK_JWT_SECRET", &"s".repeat(40))]))?;
        assert_eq!(config.database_url, "postgres://postgres@127.0.0.1:5432/helpdesk");
        assert_eq!(config.redis_url, "redis://127.0.0.1:6379");
        assert_eq!(config.smtp_url, "smtp://127.0.0.1:1025");
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.access_token_ttl, TimeDelta::minutes(15));
        Ok(())
    }

    #[test]
    fn cors_origins_are_exact_origins() -> Result<(), ConfigError> {
        let config = Config::from_map(&vars(&[
            ("HELPDESK_DEV_MODE", "true"),
            ("HELPDESK_CORS_ORIGINS", "http://localhost:3000, https://app.kadix.com.br"),
        ]))?;
        assert_eq!(config.cors_origins, ["http://localhost:3000", "https://app.kadix.com.br"]);
        assert!(Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true")]))?.cors_origins.is_empty());
        for bad in ["*", "localhost:3000", "https://app.kadix.com.br/path"] {
            let result = Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true"), ("HELPDESK_CORS_ORIGINS", bad)]));
            assert!(matches!(result, Err(ConfigError::Invalid { name: "HELPDESK_CORS_ORIGINS", .. })), "{bad}");
        }
        Ok(())
    }

    #[test]
    fn a_variable_that_moved_into_the_sla_policy_stops_the_process_and_says_where() {
        let moved = Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true"), ("HELPDESK_REMINDER_HOURS", "24")]));
        let Err(ConfigError::Invalid { name, reason }) = moved else { panic!("accepted a moved variable") };
        assert_eq!(name, "HELPDESK_REMINDER_HOURS");
        assert!(reason.contains("PUT /v1/sla-policy"), "{reason}");
        assert!(Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true"), ("HELPDESK_AUTO_CLOSE_HOURS", "")])).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true"), ("HELPDESK_LISTEN", "nowhere")]));
        assert!(matches!(err, Err(ConfigError::Invalid { name: "HELPDESK_LISTEN", .. })));
        assert!(format!("{:?}", Config::from_map(&vars(&[("HELPDESK_DEV_MODE", "true")]))).contains("Secret(***)"));
        let shared_room = Config::from_map(&vars(&[
            ("HELPDESK_DEV_MODE", "true"),
            ("HELPDESK_MEETING_URL_TEMPLATE", "https://x/room"),
        ]));
        assert!(matches!(shared_room, Err(ConfigError::Invalid { name: "HELPDESK_MEETING_URL_TEMPLATE", .. })));
    }
}
