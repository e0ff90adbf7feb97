//! `/api/bootstrap/{linux,windows,raw}`, `POST /api/bootstrap/decrypt` (superusers and the
//! deployer) and `/api/ovpnclient/download` (anyone authenticated).

use std::sync::Arc;

use actix_multipart::{Multipart, MultipartError};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;

use super::{no_store, resource};
use crate::auth::Auth;
use crate::bootstrap::Bootstrap;
use crate::error::ApiError;
use crate::state::AppState;

/// Largest sealed payload `decrypt` reads.
pub const DECRYPT_LIMIT: usize = 64 * 1024;

/// Largest whole body `decrypt` reads: the fields' [`DECRYPT_LIMIT`] and room for their framing.
/// actix-multipart holds a boundary line or a part's headers in memory until it sees their end,
/// so without this cap a body that never ends them is buffered however large it grows.
pub const DECRYPT_BODY_LIMIT: usize = 2 * DECRYPT_LIMIT;

fn payload_too_large() -> ApiError {
    ApiError::Bootstrap(413, format!("payload larger than {DECRYPT_LIMIT} bytes"))
}

/// The four downloads.
#[derive(Debug, Clone, Copy)]
enum Artifact {
    Linux,
    Windows,
    Raw,
    UserConfig,
}

impl Artifact {
    fn file_name(self) -> &'static str {
        match self {
            Artifact::Linux => "bootstrap.sh",
            Artifact::Windows => "bootstrap.ps1",
            Artifact::Raw => "openvpn_client-evon_server.conf",
            Artifact::UserConfig => "EvonHub.ovpn",
        }
    }

    fn body(self, bootstrap: &Bootstrap) -> String {
        match self {
            Artifact::Linux => bootstrap.linux.clone(),
            Artifact::Windows => bootstrap.windows.clone(),
            Artifact::Raw => bootstrap.raw.clone(),
            Artifact::UserConfig => bootstrap.user_config.clone(),
        }
    }

    /// Server material is for the deployer and superusers; the user config for anyone signed in.
    fn allowed(self, auth: &Auth) -> bool {
        matches!(self, Artifact::UserConfig) || auth.0.may_bootstrap()
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (path, artifact) in [
        ("/api/bootstrap/linux", Artifact::Linux),
        ("/api/bootstrap/windows", Artifact::Windows),
        ("/api/bootstrap/raw", Artifact::Raw),
        ("/api/ovpnclient/download", Artifact::UserConfig),
    ] {
        let handler =
            move |state: web::Data<AppState>, auth: Auth| serve_artifact(state, auth, artifact);
        cfg.service(
            resource(path, "GET, HEAD")
                .route(web::get().to(handler))
                .route(web::head().to(handler)),
        );
    }
    cfg.service(resource("/api/bootstrap/decrypt", "POST").route(web::post().to(decrypt)));
}

async fn serve_artifact(
    state: web::Data<AppState>,
    auth: Auth,
    artifact: Artifact,
) -> Result<HttpResponse, ApiError> {
    if !artifact.allowed(&auth) {
        return Err(ApiError::Forbidden);
    }
    Ok(download(
        artifact.file_name(),
        artifact.body(&*bootstrap(&state)?),
    ))
}

fn bootstrap(state: &AppState) -> Result<Arc<Bootstrap>, ApiError> {
    state
        .bootstrap
        .clone()
        .ok_or_else(|| ApiError::Unavailable("bootstrap material not loaded".into()))
}

fn require_bootstrap(auth: &Auth) -> Result<(), ApiError> {
    if auth.0.may_bootstrap() {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// A file download: octet-stream, the original's file name, never cached.
fn download(name: &str, body: String) -> HttpResponse {
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![DispositionParam::Filename(name.to_owned())],
    };
    no_store(
        HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header((header::CONTENT_DISPOSITION, disposition))
            .body(body),
    )
}

/// Opens the sealed secrets a `bootstrap.sh` carries, uploaded as multipart field `data`.
async fn decrypt(
    state: web::Data<AppState>,
    auth: Auth,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    require_bootstrap(&auth)?;
    let bootstrap = bootstrap(&state)?;
    let sealed = sealed_payload(req.headers(), payload).await?;
    let clear = web::block(move || bootstrap.open(&sealed)).await?;
    match clear.and_then(|bytes| String::from_utf8(bytes).ok()) {
        Some(text) => Ok(download("openvpn_secrets.conf", text)),
        None => {
            tracing::warn!(
                user = auth.0.username,
                "a bootstrap payload failed to decrypt"
            );
            Err(ApiError::Bootstrap(400, "failed to decrypt payload".into()))
        }
    }
}

/// The sealed payload of a decrypt request: the first multipart field named `data`, read from
/// `payload` within the route's limits (media type, [`DECRYPT_BODY_LIMIT`] on the whole body,
/// [`DECRYPT_LIMIT`] on the fields, [`crate::body::BODY_DEADLINE`]). Every refusal is a 4xx in
/// the bootstrap routes' `{"status": "error", "message": …}` shape. Public for the fuzz target.
pub async fn sealed_payload<S>(headers: &header::HeaderMap, payload: S) -> Result<Vec<u8>, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, PayloadError>> + 'static,
{
    let is_multipart = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !is_multipart {
        return Err(ApiError::Bootstrap(
            400,
            "expected multipart/form-data with a field \"data\"".into(),
        ));
    }
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > DECRYPT_BODY_LIMIT) {
        return Err(payload_too_large());
    }
    // Counted here, below the multipart parser, so that its buffers are bounded too.
    let mut read = 0usize;
    let capped = payload.map(move |chunk| {
        let chunk = chunk?;
        read += chunk.len();
        if read > DECRYPT_BODY_LIMIT {
            return Err(PayloadError::Overflow);
        }
        Ok(chunk)
    });
    let sealed = actix_web::rt::time::timeout(
        crate::body::BODY_DEADLINE,
        read_data_field(Multipart::new(headers, capped)),
    )
    .await
    .map_err(|_| {
        ApiError::Bootstrap(
            408,
            format!(
                "payload not received within {} seconds",
                crate::body::BODY_DEADLINE.as_secs()
            ),
        )
    })??;
    sealed.ok_or_else(|| ApiError::Bootstrap(400, "data missing in request".into()))
}

/// The bytes of the first field named `data`, reading at most [`DECRYPT_LIMIT`] bytes of the
/// whole body's fields.
async fn read_data_field(mut multipart: Multipart) -> Result<Option<Vec<u8>>, ApiError> {
    let mut read = 0usize;
    let mut data = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(multipart_error)?;
        let wanted = data.is_none() && field.name() == Some("data");
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(multipart_error)?;
            read += chunk.len();
            if read > DECRYPT_LIMIT {
                return Err(payload_too_large());
            }
            if wanted {
                bytes.extend_from_slice(&chunk);
            }
        }
        if wanted {
            data = Some(bytes);
        }
    }
    Ok(data)
}

fn multipart_error(error: MultipartError) -> ApiError {
    match error {
        MultipartError::Payload(PayloadError::Overflow) => payload_too_large(),
        other => ApiError::Bootstrap(400, format!("malformed multipart body: {other}")),
    }
}
