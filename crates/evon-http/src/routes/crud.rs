//! The five handlers every plain model resource shares (list, create, retrieve, update,
//! destroy), generic over what differs: the store module, the form and the wire shape.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::pagination::Page;
use evon_domain::{Action, FieldErrors, Model, Principal};
use evon_store::{DbConnection, StoreResult};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms::{Mode, Parsed};
use crate::pagination::load_page;
use crate::state::AppState;

/// A model resource at `/api/<name>` and `/api/<name>/{id}`.
pub(crate) trait Resource: 'static {
    type Item: Send + 'static;
    type Patch: Send + Sync + 'static;
    type Out: Serialize + From<Self::Item>;
    const MODEL: Model;
    const PATH: &'static str;

    fn form(body: &Map<String, Value>, mode: Mode) -> Parsed<Self::Patch>;
    fn count(conn: &mut DbConnection) -> StoreResult<u64>;
    fn list(conn: &mut DbConnection, page: &Page) -> StoreResult<Vec<Self::Item>>;
    fn get(conn: &mut DbConnection, id: i32) -> StoreResult<Self::Item>;
    fn create(
        conn: &mut DbConnection,
        actor: &Principal,
        fields: &Self::Patch,
        errors: &FieldErrors,
    ) -> StoreResult<Self::Item>;
    fn update(
        conn: &mut DbConnection,
        actor: &Principal,
        id: i32,
        fields: &Self::Patch,
        errors: &FieldErrors,
    ) -> StoreResult<Self::Item>;
    fn delete(conn: &mut DbConnection, id: i32) -> StoreResult<()>;
}

/// Registers the list and detail routes of `R`.
pub(crate) fn configure<R: Resource>(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource(R::PATH, "GET, POST, HEAD")
            .route(web::get().to(list::<R>))
            .route(web::head().to(list::<R>))
            .route(web::post().to(create::<R>)),
    );
    cfg.service(
        resource(
            &format!("{}/{{id:\\d+}}", R::PATH),
            "GET, PATCH, DELETE, HEAD",
        )
        .route(web::get().to(retrieve::<R>))
        .route(web::head().to(retrieve::<R>))
        .route(web::patch().to(update::<R>))
        .route(web::delete().to(destroy::<R>)),
    );
}

async fn list<R: Resource>(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require(R::MODEL, Action::View)?;
    let page = load_page(&state, &req, R::count, R::list).await?;
    Ok(ok(&page.map(R::Out::from)))
}

async fn create<R: Resource>(
    state: web::Data<AppState>,
    auth: Auth,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(R::MODEL, Action::Add)?;
    let form = R::form(&body.object()?, Mode::Create);
    let actor = auth.0;
    let item = state
        .write(move |conn| R::create(conn, &actor, &form.fields, &form.errors))
        .await?;
    Ok(HttpResponse::Created().json(R::Out::from(item)))
}

async fn retrieve<R: Resource>(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(R::MODEL, Action::View)?;
    let id = object_id(&id)?;
    let item = state.read(move |conn| R::get(conn, id)).await?;
    Ok(ok(&R::Out::from(item)))
}

async fn update<R: Resource>(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(R::MODEL, Action::Change)?;
    let id = object_id(&id)?;
    state.read(move |conn| R::get(conn, id).map(drop)).await?;
    let form = R::form(&body.object()?, Mode::Patch);
    let actor = auth.0;
    let item = state
        .write(move |conn| R::update(conn, &actor, id, &form.fields, &form.errors))
        .await?;
    Ok(ok(&R::Out::from(item)))
}

async fn destroy<R: Resource>(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(R::MODEL, Action::Delete)?;
    let id = object_id(&id)?;
    state.write(move |conn| R::delete(conn, id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
