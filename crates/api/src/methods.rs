//! HTTP methods on the paths the API serves: `HEAD` answered by every `GET` route, and for a
//! request no route takes, `405 Method Not Allowed` with `Allow` on a known path (`OPTIONS`
//! answers `204` with the same `Allow`), `404` elsewhere.
//!
//! Which methods a path allows is read from the OpenAPI document, which is generated from the
//! handlers themselves, so a new route is covered without anything to register here.

use crate::error::Problem;
use actix_web::body::MessageBody;
use actix_web::dev::{ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

/// Paths served outside the OpenAPI document (Swagger UI, the document itself, metrics).
const UNDOCUMENTED_GET_PATHS: [&str; 4] = ["/docs", "/docs/{_:.*}", "/openapi.json", "/metrics"];

/// Every path pattern the API serves, with the methods each allows.
pub struct KnownPaths {
    paths: Vec<(ResourceDef, Vec<Method>)>,
}

impl KnownPaths {
    pub fn from_document(document: &utoipa::openapi::OpenApi) -> Self {
        let mut paths: Vec<(ResourceDef, Vec<Method>)> = document
            .paths
            .paths
            .iter()
            .map(|(pattern, item)| {
                let operations = [
                    (Method::GET, item.get.is_some()),
                    (Method::HEAD, item.get.is_some() || item.head.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ];
                let methods = operations.into_iter().filter(|(_, present)| *present).map(|(m, _)| m).collect();
                (ResourceDef::new(pattern.as_str()), methods)
            })
            .collect();
        for pattern in UNDOCUMENTED_GET_PATHS {
            paths.push((ResourceDef::new(pattern), vec![Method::GET, Method::HEAD]));
        }
        KnownPaths { paths }
    }

    /// The methods allowed on `path`, `None` for a path the API does not serve.
    pub fn allowed(&self, path: &str) -> Option<Vec<Method>> {
        let mut allowed: Vec<Method> = Vec::new();
        for (resource, methods) in &self.paths {
            if resource.is_match(path) {
                allowed.extend(methods.iter().filter(|m| !allowed.contains(m)).cloned().collect::<Vec<_>>());
            }
        }
        if allowed.is_empty() {
            return None;
        }
        allowed.push(Method::OPTIONS);
        Some(allowed)
    }
}

/// The method a `HEAD` request arrived with, before [`head_as_get`] rewrote it.
#[derive(Clone, Copy)]
struct ArrivedAsHead;

/// Middleware: a `HEAD` request is routed as `GET`. The HTTP layer (actix-http, HTTP/1 and 2)
/// remembers the request was `HEAD` and sends the headers without the body.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(ArrivedAsHead);
    }
    next.call(req).await
}

/// The default service: what answers a request that no route took.
pub async fn unrouted(req: HttpRequest, known: web::Data<KnownPaths>) -> HttpResponse {
    let path = req.path();
    let Some(allowed) = known.allowed(path) else {
        return Problem::new(StatusCode::NOT_FOUND, "not_found", format!("no resource at {path}")).response();
    };
    let allow = allowed.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    if req.method() == Method::OPTIONS {
        return HttpResponse::NoContent().insert_header((header::ALLOW, allow)).finish();
    }
    let method = if req.extensions().contains::<ArrivedAsHead>() { "HEAD" } else { req.method().as_str() };
    let mut response = Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {path}; allowed: {allow}"),
    )
    .response();
    if let Ok(value) = header::HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_of_every_matching_pattern_are_allowed() {
        let document = crate::openapi::document();
        let known = KnownPaths::from_document(&document);
        let allowed = |path: &str| {
            known.allowed(path).map(|methods| methods.iter().map(Method::as_str).collect::<Vec<_>>().join(","))
        };
        assert_eq!(allowed("/v1/tickets").as_deref(), Some("GET,HEAD,POST,OPTIONS"));
        assert_eq!(allowed("/v1/me").as_deref(), Some("GET,HEAD,PATCH,DELETE,OPTIONS"));
        assert_eq!(allowed("/v1/nothing"), None);
    }
}
