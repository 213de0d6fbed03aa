//! The API's logging: the shared set-up (`helpdesk_core::telemetry`, which escapes control
//! characters in every format) with the API's default filter.

use helpdesk_core::telemetry::LogFormat;

pub fn init(json: bool) {
    helpdesk_core::telemetry::init(LogFormat { json, default_filter: "info,sqlx=warn", with_target: false });
}
