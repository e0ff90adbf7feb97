//! Evon Hub's REST API over actix-web.
//!
//! Thin by design: extractors turn requests into principals and JSON objects, `forms` turns JSON
//! into validated domain values (with DRF's messages), handlers check permissions and call one
//! store operation on the blocking pool, and [`ApiError`] renders every failure in the API's
//! error format. No SQL and no domain rule lives here.

pub mod api_docs;
pub mod auth;
pub mod body;
pub mod bootstrap;
pub mod error;
pub mod forms;
pub mod openapi;
pub mod pagination;
pub mod routes;
pub mod state;
pub mod wire;

pub use error::ApiError;
pub use state::{AppState, Client, Disconnect};

use actix_web::middleware::DefaultHeaders;
use actix_web::{web, App};

/// Largest request body the API reads.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Registers every route and the JSON 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    routes::configure(cfg);
    cfg.service(openapi::service());
    api_docs::configure(cfg);
    cfg.default_service(web::to(routes::not_found));
}

/// The whole application for one hub, as `serve` runs it and the tests drive it.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .wrap(actix_web::middleware::from_fn(
            body::close_after_unread_body,
        ))
        .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
        .wrap(actix_web::middleware::from_fn(routes::log_request))
        .configure(configure)
}
