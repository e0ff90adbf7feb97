//! `/api/server` and `/api/server/{id}`. Servers are created by the OpenVPN hook, never by POST.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::pagination::Page;
use evon_domain::server::Server;
use evon_domain::{Action, Model};
use evon_store::network::AccessCache;
use evon_store::{servers, DbConnection, StoreResult};

use super::{object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms;
use crate::pagination::{envelope, page_request};
use crate::state::{AppState, Client};
use crate::wire::ServerView;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/server", "GET, HEAD")
            .route(web::get().to(list))
            .route(web::head().to(list)),
    );
    cfg.service(
        resource("/api/server/{id:\\d+}", "GET, PATCH, DELETE, HEAD")
            .route(web::get().to(retrieve))
            .route(web::head().to(retrieve))
            .route(web::patch().to(update))
            .route(web::delete().to(destroy)),
    );
}

/// The servers a user can reach, by the access engine over the current network.
fn reachable(cache: &AccessCache, conn: &mut DbConnection, user_id: i32) -> StoreResult<Vec<i32>> {
    Ok(cache
        .index(conn)?
        .reachable_servers(user_id)
        .into_iter()
        .collect())
}

fn view(conn: &mut DbConnection) -> StoreResult<ServerView> {
    Ok(ServerView {
        zone: evon_store::config::get(conn)?.timezone,
        now: chrono::Utc::now(),
    })
}

/// One page of servers: every server for superusers (with `accessible`), only the reachable
/// ones, in the restricted shape, for everyone else.
async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let request = page_request(&req)?;
    let actor = auth.0;
    let cache = state.access.clone();
    type Loaded = (u64, Option<Page>, Vec<Server>, Vec<i32>, ServerView);
    let (total, page, items, reachable, view): Loaded = state
        .read(move |conn| {
            let view = view(conn)?;
            let reachable = reachable(&cache, conn, actor.user_id)?;
            let total = if actor.is_superuser {
                servers::count(conn)?
            } else {
                reachable.len() as u64
            };
            let Ok(page) = request.resolve(total) else {
                return Ok((total, None, Vec::new(), reachable, view));
            };
            let items = if actor.is_superuser {
                servers::list(conn, &page)?
            } else {
                let ids: Vec<i32> = reachable
                    .iter()
                    .copied()
                    .skip(page.offset as usize)
                    .take(page.limit as usize)
                    .collect();
                servers::by_ids(conn, &ids)?
            };
            Ok((total, Some(page), items, reachable, view))
        })
        .await?;
    let page = page.ok_or(ApiError::InvalidPage)?;
    if actor.is_superuser {
        let results = items.into_iter().map(|s| {
            let accessible = reachable.binary_search(&s.id).is_ok();
            view.full(s, accessible)
        });
        Ok(ok(&envelope(&state, &req, total, &page, results.collect())))
    } else {
        let results = items.into_iter().map(|s| view.restricted(s)).collect();
        Ok(ok(&envelope(&state, &req, total, &page, results)))
    }
}

/// A server in the full shape, with `accessible` for the requester.
async fn full(state: &AppState, user_id: i32, server: Server) -> Result<HttpResponse, ApiError> {
    let cache = state.access.clone();
    let (view, reachable) = state
        .read(move |conn| Ok((view(conn)?, reachable(&cache, conn, user_id)?)))
        .await?;
    let accessible = reachable.binary_search(&server.id).is_ok();
    Ok(ok(&view.full(server, accessible)))
}

async fn retrieve(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Server, Action::View)?;
    let id = object_id(&id)?;
    let server = state.read(move |conn| servers::get(conn, id)).await?;
    full(&state, auth.0.user_id, server).await
}

/// Only `server_groups` can change; everything else about a server comes from the server.
async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Server, Action::Change)?;
    let id = object_id(&id)?;
    state.read(move |conn| servers::get(conn, id)).await?;
    let form = forms::server(&body.object()?);
    let server = state
        .write(move |conn| servers::set_groups(conn, id, form.fields.as_deref(), &form.errors))
        .await?;
    full(&state, auth.0.user_id, server).await
}

async fn destroy(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Server, Action::Delete)?;
    let id = object_id(&id)?;
    let server = state.write(move |conn| servers::delete(conn, id)).await?;
    tracing::info!(server = server.id, fqdn = %server.fqdn, "server deleted");
    state.disconnect(vec![Client::Server(server.uuid.as_str().to_owned())]);
    Ok(HttpResponse::NoContent().finish())
}
