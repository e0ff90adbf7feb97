//! `/api/group` and `/api/group/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::{Action, Model};
use evon_store::groups;

use super::{object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms::{self, Mode};
use crate::pagination::load_page;
use crate::state::AppState;
use crate::wire::GroupOut;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/group", "GET, POST, HEAD")
            .route(web::get().to(list))
            .route(web::head().to(list))
            .route(web::post().to(create)),
    );
    cfg.service(
        resource("/api/group/{id:\\d+}", "GET, PATCH, DELETE, HEAD")
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
    auth.require(Model::Group, Action::View)?;
    let page = load_page(&state, &req, groups::count, groups::list).await?;
    Ok(ok(&page.map(GroupOut::from)))
}

async fn create(
    state: web::Data<AppState>,
    auth: Auth,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Group, Action::Add)?;
    let form = forms::group(&body.object()?, Mode::Create);
    let actor = auth.0;
    let group = state
        .write(move |conn| groups::create(conn, &actor, &form.fields, &form.errors))
        .await?;
    Ok(HttpResponse::Created().json(GroupOut::from(group)))
}

async fn retrieve(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Group, Action::View)?;
    let id = object_id(&id)?;
    let group = state.read(move |conn| groups::get(conn, id)).await?;
    Ok(ok(&GroupOut::from(group)))
}

async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Group, Action::Change)?;
    let id = object_id(&id)?;
    state.read(move |conn| groups::get(conn, id)).await?;
    let form = forms::group(&body.object()?, Mode::Patch);
    let actor = auth.0;
    let group = state
        .write(move |conn| groups::update(conn, &actor, id, &form.fields, &form.errors))
        .await?;
    Ok(ok(&GroupOut::from(group)))
}

async fn destroy(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Group, Action::Delete)?;
    let id = object_id(&id)?;
    state.write(move |conn| groups::delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
