//! The routes, one module per resource, and what every route shares.

mod bootstrap;
mod config;
mod crud;
mod groups;
mod misc;
mod profiles;
mod servers;
mod users;

pub use bootstrap::{sealed_payload, DECRYPT_BODY_LIMIT, DECRYPT_LIMIT};

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CacheControl, CacheDirective};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth::Auth;
use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    misc::configure(cfg);
    bootstrap::configure(cfg);
    users::configure(cfg);
    profiles::configure(cfg);
    servers::configure(cfg);
    crud::configure::<groups::Groups>(cfg);
    crud::configure::<groups::ServerGroups>(cfg);
    crud::configure::<groups::Rules>(cfg);
    crud::configure::<groups::Policies>(cfg);
    config::configure(cfg);
}

/// A resource whose unsupported methods answer 405 with `Allow` (after authentication, as in
/// DRF, so that the API's shape is not shown to anonymous clients).
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |_auth: Auth, req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        })
    }))
}

/// Everything that matches no route.
pub async fn not_found() -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::NotFound)
}

/// An object id from the path; ids that cannot exist are simply not found.
pub(crate) fn object_id(raw: &str) -> Result<i32, ApiError> {
    raw.parse::<i32>().map_err(|_| ApiError::NotFound)
}

pub(crate) fn ok<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().json(body)
}

/// A response that carries a secret: no cache may keep it.
pub(crate) fn no_store(mut response: HttpResponse) -> HttpResponse {
    if let Ok(value) = CacheControl(vec![CacheDirective::NoStore])
        .to_string()
        .parse()
    {
        response
            .headers_mut()
            .insert(actix_web::http::header::CACHE_CONTROL, value);
    }
    response
}

/// Logs each request's method, path, status and duration; never headers, query or body.
pub async fn log_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let response = next.call(req).await?;
    tracing::info!(
        target: "evon_http::access",
        %method,
        path,
        status = response.status().as_u16(),
        micros = started.elapsed().as_micros() as u64,
    );
    Ok(response)
}
