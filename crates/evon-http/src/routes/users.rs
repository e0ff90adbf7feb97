//! `/api/user` and `/api/user/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::{Action, Model};
use evon_store::users;

use super::{no_store, object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms::{self, Mode, UserForm};
use crate::pagination::load_page;
use crate::state::{AppState, Client};
use crate::wire::UserOut;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/user", "GET, POST, HEAD")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    );
    cfg.service(
        resource("/api/user/{id:\\d+}", "GET, PATCH, DELETE, HEAD")
            .route(web::get().to(retrieve))
            .route(web::head().to(retrieve))
            .route(web::patch().to(update))
            .route(web::delete().to(destroy)),
    );
}

async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::User, Action::View)?;
    let page = load_page(&state, &req, users::count, users::list).await?;
    Ok(ok(&page.map(UserOut::from)))
}

/// Hashes the password on the blocking pool, but only when the rest of the form is valid: a
/// request that will be refused should not cost an argon2 run.
async fn password_hash(state: &AppState, form: &UserForm) -> Result<Option<String>, ApiError> {
    match (&form.password, form.errors.is_empty()) {
        (Some(password), true) => {
            let password = password.clone();
            state
                .compute(move || {
                    evon_crypto::hash_password(&password)
                        .map(Some)
                        .map_err(|e| ApiError::Internal(e.to_string()))
                })
                .await
        }
        _ => Ok(None),
    }
}

async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::User, Action::Add)?;
    let form = forms::user(&body.object()?, Mode::Create);
    let hash = password_hash(&state, &form).await?;
    let actor = auth.0;
    let created = state
        .write(move |conn| users::create(conn, &actor, &form.fields, hash.as_deref(), &form.errors))
        .await?;
    let mut out = UserOut::from(created.user);
    out.token = Some(created.token.reveal().to_owned());
    Ok(no_store(HttpResponse::Created().json(out)))
}

async fn retrieve(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::User, Action::View)?;
    let id = object_id(&id)?;
    let user = state.read(move |conn| users::get(conn, id)).await?;
    Ok(ok(&UserOut::from(user)))
}

async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::User, Action::Change)?;
    let id = object_id(&id)?;
    // A session's common name is the username it signed in with: the one before this change.
    let before = state.read(move |conn| users::get(conn, id)).await?;
    let form = forms::user(&body.object()?, Mode::Patch);
    let hash = password_hash(&state, &form).await?;
    let deactivating = form.fields.is_active == Some(false);
    let actor = auth.0;
    let user = state
        .write(move |conn| {
            users::update(
                conn,
                &actor,
                id,
                &form.fields,
                hash.as_deref(),
                &form.errors,
            )
        })
        .await?;
    if deactivating && !user.is_active {
        state.disconnect(vec![Client::User(before.username)]);
    }
    Ok(ok(&UserOut::from(user)))
}

async fn destroy(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::User, Action::Delete)?;
    let id = object_id(&id)?;
    let actor = auth.0;
    let username = state
        .write(move |conn| {
            let username = users::get(conn, id)?.username;
            users::delete(conn, &actor, id)?;
            Ok(username)
        })
        .await?;
    state.disconnect(vec![Client::User(username)]);
    Ok(HttpResponse::NoContent().finish())
}
