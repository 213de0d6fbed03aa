//! Every answer the test suite gets must be in the committed OpenAPI document: each test app,
//! when dropped, checks every (method, route, status) it served against `openapi/openapi.json`
//! (see `TestApp`'s `Drop`), so the suite as a whole shows that the spec documents every status
//! each operation returned.
use serde_json::Value;
use std::sync::OnceLock;

/// Served beside the API, outside the document.
const NOT_IN_THE_DOCUMENT: [&str; 4] = ["/docs", "/docs/{_:.*}", "/openapi.json", "/metrics"];

fn committed() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| serde_json::from_str(include_str!("../../../../openapi/openapi.json")).unwrap())
}

/// The answers in `observed` that the committed document does not list, as readable lines.
/// Requests for unknown paths (`unmatched`) belong to no operation and are not checked here.
pub fn undocumented(observed: &[(String, String, u16)]) -> Vec<String> {
    observed
        .iter()
        .filter(|(_, route, _)| route != "unmatched" && !NOT_IN_THE_DOCUMENT.contains(&route.as_str()))
        .filter(|(method, route, status)| {
            let path = &committed()["paths"][route];
            let operation = &path[method.to_lowercase()];
            if !path.is_null() && operation.is_null() {
                // A method the path does not serve is answered for the path, not an operation:
                // 405 with `Allow`, or 204 to OPTIONS.
                return !(*status == 405 || (method == "OPTIONS" && *status == 204));
            }
            operation["responses"].get(status.to_string()).is_none()
        })
        .map(|(method, route, status)| format!("{method} {route} → {status}"))
        .collect()
}

#[test]
fn a_status_missing_from_the_document_is_reported() {
    let seen = |method: &str, route: &str, status: u16| vec![(method.to_owned(), route.to_owned(), status)];
    assert!(undocumented(&seen("GET", "/v1/me", 200)).is_empty());
    assert!(undocumented(&seen("GET", "/v1/me", 401)).is_empty());
    assert_eq!(undocumented(&seen("GET", "/v1/me", 418)), ["GET /v1/me → 418"]);
    assert_eq!(undocumented(&seen("GET", "/v1/not-documented", 200)), ["GET /v1/not-documented → 200"]);
    assert!(undocumented(&seen("DELETE", "unmatched", 404)).is_empty());
    assert!(undocumented(&seen("PUT", "/v1/me", 405)).is_empty());
    assert!(undocumented(&seen("OPTIONS", "/v1/me", 204)).is_empty());
    assert_eq!(undocumented(&seen("PUT", "/v1/me", 500)), ["PUT /v1/me → 500"]);
}
