//! The JSON object a POST or PATCH carries, read with the API's limits and error shapes.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::BODY_LIMIT;

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
            Ok(Body {
                content_type,
                bytes: bytes.freeze(),
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
