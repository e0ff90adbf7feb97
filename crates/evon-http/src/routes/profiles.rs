//! `/api/userprofile/{user}`: a user's own profile, or anyone's for superusers.

use actix_web::{web, HttpResponse};
use evon_store::users;

use super::{object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms;
use crate::state::AppState;
use crate::wire::ProfileOut;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/userprofile/{user:\\d+}", "GET, PATCH, HEAD")
            .route(web::get().to(retrieve))
            .route(web::head().to(retrieve))
            .route(web::patch().to(update)),
    );
}

/// Profile permissions (view/change_userprofile) are not grantable, so only the owner and
/// superusers pass.
fn require_owner_or_superuser(auth: &Auth, user_id: i32) -> Result<(), ApiError> {
    if auth.0.is_superuser || auth.0.user_id == user_id {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

async fn retrieve(
    state: web::Data<AppState>,
    auth: Auth,
    user: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let user_id = object_id(&user)?;
    require_owner_or_superuser(&auth, user_id)?;
    let profile = state
        .read(move |conn| users::profile(conn, user_id))
        .await?;
    Ok(ok(&ProfileOut::from(profile)))
}

async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    user: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    let user_id = object_id(&user)?;
    require_owner_or_superuser(&auth, user_id)?;
    state
        .read(move |conn| users::profile(conn, user_id))
        .await?;
    let shared = forms::profile(&body.object()?).map_err(ApiError::Validation)?;
    let profile = state
        .write(move |conn| match shared {
            Some(shared) => users::set_shared(conn, user_id, shared),
            None => users::profile(conn, user_id),
        })
        .await?;
    Ok(ok(&ProfileOut::from(profile)))
}
