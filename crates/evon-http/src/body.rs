//! The JSON object a POST or PATCH carries, read with the API's limits and error shapes.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use futures_util::{Stream, StreamExt};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::BODY_LIMIT;

/// How long a request body may take to arrive once its headers have. actix-web times out only
/// the headers of a connection's first request, so without this a client trickling a body a
/// byte a second holds its connection and its handler for as long as it likes. 15 s carries the
/// largest body (1 MiB) at 70 kB/s; the API's real bodies are a few hundred bytes.
pub const BODY_DEADLINE: Duration = Duration::from_secs(15);

/// A request body that is a JSON object. An empty body counts as `{}`, as in DRF.
#[derive(Debug, Clone, Default)]
pub struct JsonObject(pub Map<String, Value>);

/// A request body read within the size limit but not yet parsed: handlers parse it after the
/// permission check, so that a client without permission learns nothing from parse errors.
#[derive(Debug, Clone)]
pub struct Body {
    content_type: Option<String>,
    bytes: web::Bytes,
}

impl Body {
    /// The body as a JSON object, or the 400/415 that says why it is not one.
    pub fn object(&self) -> Result<Map<String, Value>, ApiError> {
        parse_body(self.content_type.as_deref(), &self.bytes).map(|object| object.0)
    }
}

/// Python's name for a JSON value's type, as DRF's messages use it.
pub fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a complete body.
pub fn parse_body(content_type: Option<&str>, bytes: &[u8]) -> Result<JsonObject, ApiError> {
    match content_type {
        // No Content-Type and no body: nothing was sent.
        None if bytes.is_empty() => return Ok(JsonObject::default()),
        None => return Err(ApiError::UnsupportedMediaType(String::new())),
        Some(media_type) if !is_json_media_type(media_type) => {
            return Err(ApiError::UnsupportedMediaType(media_type.to_owned()))
        }
        Some(_) => {}
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonObject::default());
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))?;
    match value {
        Value::Object(map) => Ok(JsonObject(map)),
        other => Err(ApiError::not_a_dictionary(python_type_name(&other))),
    }
}

impl FromRequest for Body {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let declared_length = req
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if declared_length.is_some_and(|length| length > BODY_LIMIT) {
                return Err(ApiError::PayloadTooLarge);
            }
            let read = async {
                let mut bytes = web::BytesMut::new();
                while let Some(chunk) = payload.next().await {
                    let chunk = chunk.map_err(|e| {
                        ApiError::BadRequest(format!("Could not read the request body: {e}"))
                    })?;
                    if bytes.len() + chunk.len() > BODY_LIMIT {
                        return Err(ApiError::PayloadTooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(bytes.freeze())
            };
            let bytes = actix_web::rt::time::timeout(BODY_DEADLINE, read)
                .await
                .map_err(|_| ApiError::BodyTimeout)??;
            Ok(Body {
                content_type,
                bytes,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/x-www-form-urlencoded"));
    }

    #[test]
    fn bodies() {
        let json = Some("application/json");
        assert!(parse_body(json, b"").unwrap().0.is_empty());
        assert!(parse_body(None, b"").unwrap().0.is_empty());
        assert_eq!(parse_body(json, br#"{"a": 1}"#).unwrap().0.len(), 1);
        assert!(
            matches!(parse_body(json, b"{"), Err(ApiError::BadRequest(m)) if m.starts_with("JSON parse error - "))
        );
        assert!(matches!(
            parse_body(json, b"[]"),
            Err(ApiError::Validation(_))
        ));
        assert!(
            matches!(parse_body(None, b"{}"), Err(ApiError::UnsupportedMediaType(m)) if m.is_empty())
        );
        assert!(
            matches!(parse_body(Some("text/plain"), b"{}"), Err(ApiError::UnsupportedMediaType(m)) if m == "text/plain")
        );
    }
}

/// Closes the connection after a request whose chunked body was not read to its end (refused
/// as too large or too slow, or never wanted, as by a 401). actix closes the connection after an
/// unread body of declared length, but drains a chunked one that its handler dropped, for as
/// long as the client keeps sending; keeping the body alive until the answer has gone out makes
/// actix close instead.
pub async fn close_after_unread_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let chunked = req
        .headers()
        .get(TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().to_ascii_lowercase().ends_with(b"chunked"));
    if !chunked {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let payload = SharedPayload {
        payload: Rc::new(RefCell::new(req.take_payload())),
        finished: Rc::new(Cell::new(false)),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(payload.clone()),
    });
    let response = next.call(req).await?;
    if payload.finished.get() {
        return Ok(response.map_into_left_body());
    }
    Ok(response
        .map_body(|_, body| HoldingPayload {
            body: body.boxed(),
            _payload: payload,
        })
        .map_into_right_body())
}

/// The request body, read by the handler and held by [`close_after_unread_body`].
#[derive(Clone)]
struct SharedPayload {
    payload: Rc<RefCell<Payload>>,
    finished: Rc<Cell<bool>>,
}

impl Stream for SharedPayload {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.payload.borrow_mut().poll_next_unpin(cx);
        if matches!(polled, Poll::Ready(None)) {
            self.finished.set(true);
        }
        polled
    }
}

/// A response body that keeps the unread request body alive while it is sent.
struct HoldingPayload {
    body: BoxBody,
    _payload: SharedPayload,
}

impl MessageBody for HoldingPayload {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}
