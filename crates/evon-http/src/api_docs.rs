//! The API documentation at `GET /api/`: ReDoc over the hub's own OpenAPI document, served
//! entirely from the binary so that it works without any network access.
//!
//! The page loads one script, `/api/docs/redoc.standalone.js` (ReDoc 2.5.4, vendored in
//! `assets/`, see `assets/README.md`), which finds the `<redoc>` element and reads the
//! document from `/api/schema?format=json`. The page has no inline script and no external URL;
//! its Content-Security-Policy allows only this origin (plus the inline styles and `blob:`
//! workers ReDoc creates), and fonts are the system's, so nothing is fetched from elsewhere.
//! Neither needs a token: they say nothing the document does not (docs/API-DECISIONS.md).

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;

/// Where the documentation page is served.
pub const PAGE_PATH: &str = "/api/";
/// Where ReDoc's bundle is served.
pub const REDOC_PATH: &str = "/api/docs/redoc.standalone.js";

/// ReDoc's standalone bundle, exactly as published.
pub const REDOC_JS: &[u8] = include_bytes!("../assets/redoc.standalone.js");

/// The page's Content-Security-Policy: same origin only.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     worker-src 'self' blob:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page. The theme is JSON in the `theme` attribute (ReDoc parses it) and names only
/// system fonts, so that ReDoc does not ask for its default web fonts.
pub const PAGE_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Evon Hub API</title>
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<redoc spec-url="/api/schema?format=json" theme='{"typography":{"fontFamily":"system-ui, -apple-system, \"Segoe UI\", Roboto, \"Helvetica Neue\", Arial, sans-serif","headings":{"fontFamily":"system-ui, -apple-system, \"Segoe UI\", Roboto, \"Helvetica Neue\", Arial, sans-serif"},"code":{"fontFamily":"ui-monospace, \"DejaVu Sans Mono\", Menlo, Consolas, monospace"}}}'></redoc>
<script src="/api/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// The asset's bytes never change within one build: a year, immutable.
const ASSET_CACHE: &str = "public, max-age=31536000, immutable";

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(PAGE_HTML)
}

async fn redoc() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, ASSET_CACHE))
        .body(REDOC_JS)
}

/// Registers the page and the asset; other methods are 405 `Allow: GET, HEAD`, without a token.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource(PAGE_PATH)
            .route(web::get().to(page))
            .route(web::head().to(page))
            .default_service(web::to(method_not_allowed)),
    );
    cfg.service(
        web::resource(REDOC_PATH)
            .route(web::get().to(redoc))
            .route(web::head().to(redoc))
            .default_service(web::to(method_not_allowed)),
    );
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        method: req.method().to_string(),
        allow: "GET, HEAD",
    })
}
