//! `/api/ping` and `/api/permission`.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::pagination::PageRequest;
use evon_domain::permission::CATALOGUE;

use super::{ok, resource};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::pagination::{envelope, page_request};
use crate::state::AppState;
use crate::wire::{PermissionOut, Pong};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/ping", "GET, HEAD")
            .route(web::get().to(ping))
            .route(web::head().to(ping)),
    );
    cfg.service(
        resource("/api/permission", "GET, HEAD")
            .route(web::get().to(permissions))
            .route(web::head().to(permissions)),
    );
}

/// Connectivity check: any authenticated user.
async fn ping(_auth: Auth) -> HttpResponse {
    ok(&Pong { message: "pong" })
}

/// The grantable permissions: superusers only.
async fn permissions(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require_superuser()?;
    let request: PageRequest = page_request(&req)?;
    let total = CATALOGUE.len() as u64;
    let page = request.resolve(total).map_err(|_| ApiError::InvalidPage)?;
    let start = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let items: Vec<PermissionOut> = CATALOGUE
        .iter()
        .skip(start)
        .take(page.limit as usize)
        .map(PermissionOut::from)
        .collect();
    Ok(ok(&envelope(&state, &req, total, &page, items)))
}
