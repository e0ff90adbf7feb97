//! The one error type of the API, rendered as DRF renders its errors.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use evon_domain::errors::NON_FIELD_ERRORS;
use evon_domain::FieldErrors;
use evon_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401, with one of the five authentication messages.
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("permission denied")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("invalid page")]
    InvalidPage,
    #[error("method {method} not allowed")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// 400 with errors per field.
    #[error("validation failed: {0}")]
    Validation(FieldErrors),
    /// 400 with a single `detail`.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("request body too large")]
    PayloadTooLarge,
    /// 408: the body did not arrive within [`crate::body::BODY_DEADLINE`] of its headers.
    #[error("request body timed out")]
    BodyTimeout,
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database is unreachable or saturated; the cause is logged, never sent.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// An error of the bootstrap routes, in their `{"status": "error", "message": …}` shape.
    #[error("bootstrap: {1}")]
    Bootstrap(u16, String),
    /// Anything else; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

pub const FORBIDDEN: &str = "You do not have permission to perform this action.";
pub const NOT_FOUND: &str = "Not found.";

impl ApiError {
    /// A 400 for a body that is valid JSON but not an object.
    pub fn not_a_dictionary(type_name: &str) -> Self {
        ApiError::Validation(FieldErrors::single(
            NON_FIELD_ERRORS,
            format!("Invalid data. Expected a dictionary, but got {type_name}."),
        ))
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::InvalidPage => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation(_) | ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Bootstrap(status, _) => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = HttpResponse::build(status);
        let body = match self {
            ApiError::Unauthenticated(message) => {
                response
                    .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Token")));
                json!({ "detail": message })
            }
            ApiError::Forbidden => json!({ "detail": FORBIDDEN }),
            ApiError::NotFound => json!({ "detail": NOT_FOUND }),
            ApiError::InvalidPage => json!({ "detail": evon_domain::pagination::INVALID_PAGE }),
            ApiError::MethodNotAllowed { method, allow } => {
                response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
                json!({ "detail": format!("Method \"{method}\" not allowed.") })
            }
            ApiError::Validation(errors) => {
                serde_json::to_value(errors).unwrap_or_else(|_| json!({}))
            }
            ApiError::BadRequest(detail) => json!({ "detail": detail }),
            ApiError::UnsupportedMediaType(media_type) => {
                json!({ "detail": format!("Unsupported media type \"{media_type}\" in request.") })
            }
            ApiError::PayloadTooLarge => {
                json!({ "detail": format!("Request body is larger than the limit of {} bytes.", crate::BODY_LIMIT) })
            }
            ApiError::BodyTimeout => json!({ "detail": format!(
                "The request body was not received within {} seconds.",
                crate::body::BODY_DEADLINE.as_secs()
            ) }),
            ApiError::Conflict(_) => {
                json!({ "detail": "The change collided with concurrent changes and was not applied; try again." })
            }
            ApiError::Unavailable(cause) => {
                tracing::error!(%cause, "database unavailable");
                json!({ "detail": "Service temporarily unavailable, try again later." })
            }
            ApiError::Bootstrap(_, message) => json!({ "status": "error", "message": message }),
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                json!({ "detail": "A server error occurred." })
            }
        };
        response.json(body)
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Validation(errors) => ApiError::Validation(errors),
            StoreError::Forbidden => ApiError::Forbidden,
            StoreError::Conflict(cause) => ApiError::Conflict(cause),
            StoreError::Unavailable(cause) => ApiError::Unavailable(cause),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(format!("blocking task failed: {error}"))
    }
}
