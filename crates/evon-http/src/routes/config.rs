//! `/api/config` (a one-item list) and `PATCH /api/config/{id}`.

use actix_web::{web, HttpRequest, HttpResponse};
use evon_domain::builtin::CONFIG_ID;
use evon_domain::{Action, Model};

use super::{object_id, ok, resource};
use crate::auth::Auth;
use crate::body::Body;
use crate::error::ApiError;
use crate::forms;
use crate::pagination::load_page;
use crate::state::{AppState, Client};
use crate::wire::ConfigOut;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/api/config", "GET, HEAD")
            .route(web::get().to(list))
            .route(web::head().to(list)),
    );
    cfg.service(resource("/api/config/{id:\\d+}", "PATCH").route(web::patch().to(update)));
}

async fn list(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Config, Action::View)?;
    let page = load_page(
        &state,
        &req,
        |_| Ok(1),
        |conn, _| Ok(vec![evon_store::config::get(conn)?]),
    )
    .await?;
    Ok(ok(&page.map(ConfigOut::from)))
}

async fn update(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<String>,
    body: Body,
) -> Result<HttpResponse, ApiError> {
    auth.require(Model::Config, Action::Change)?;
    if object_id(&id)? != CONFIG_ID {
        return Err(ApiError::NotFound);
    }
    let patch = forms::config(&body.object()?).map_err(ApiError::Validation)?;
    let change = state
        .write(move |conn| evon_store::config::update(conn, patch.clone()))
        .await?;
    for server in &change.removed_servers {
        tracing::info!(server = server.id, fqdn = %server.fqdn, "blacklisted server deleted");
    }
    state.disconnect(
        change
            .removed_servers
            .iter()
            .map(|server| Client::Server(server.uuid.as_str().to_owned()))
            .collect(),
    );
    Ok(ok(&ConfigOut::from(change.config)))
}
