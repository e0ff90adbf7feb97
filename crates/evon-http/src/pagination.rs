//! The paginated envelope of every list, with DRF's `next`/`previous` links.

use actix_web::HttpRequest;
use evon_domain::pagination::{Page, PageRequest};
use evon_store::{DbConnection, StoreResult};
use serde::Serialize;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Paginated<T> {
    pub count: u64,
    pub next: Option<String>,
    pub previous: Option<String>,
    pub results: Vec<T>,
}

impl<T> Paginated<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Paginated<U> {
        Paginated {
            count: self.count,
            next: self.next,
            previous: self.previous,
            results: self.results.into_iter().map(f).collect(),
        }
    }
}

/// The query parameters of a request, in order.
fn query_pairs(req: &HttpRequest) -> Vec<(String, String)> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

/// The `page` a request asks for; 404 "Invalid page." when it is not a page number.
pub fn page_request(req: &HttpRequest) -> Result<PageRequest, ApiError> {
    let pairs = query_pairs(req);
    let page = pairs
        .iter()
        .rev()
        .find(|(k, _)| k == "page")
        .map(|(_, v)| v.as_str());
    PageRequest::parse(page).map_err(|_| ApiError::InvalidPage)
}

/// The absolute URL of this list at another page: the configured public URL or the request's
/// scheme and Host, the request's path, its other query parameters (sorted, as DRF does), and
/// `page`, which is left out for page 1.
fn page_url(state: &AppState, req: &HttpRequest, page: u64) -> String {
    let base = match &state.public_url {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    };
    let mut pairs: Vec<(String, String)> = query_pairs(req)
        .into_iter()
        .filter(|(k, _)| k != "page")
        .collect();
    if page > 1 {
        pairs.push(("page".into(), page.to_string()));
    }
    pairs.sort();
    let mut url = format!("{base}{}", req.path());
    if !pairs.is_empty() {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        url.push('?');
        url.push_str(&query);
    }
    url
}

/// Counts, locates the requested page and loads it, all in one read transaction.
pub async fn load_page<T, C, L>(
    state: &AppState,
    req: &HttpRequest,
    count: C,
    list: L,
) -> Result<Paginated<T>, ApiError>
where
    T: Send + 'static,
    C: FnOnce(&mut DbConnection) -> StoreResult<u64> + Send + 'static,
    L: FnOnce(&mut DbConnection, &Page) -> StoreResult<Vec<T>> + Send + 'static,
{
    let request = page_request(req)?;
    let (total, page, items) = state
        .read(move |conn| {
            let total = count(conn)?;
            match request.resolve(total) {
                Ok(page) => Ok((total, Some(page), list(conn, &page)?)),
                Err(_) => Ok((total, None, Vec::new())),
            }
        })
        .await?;
    let page = page.ok_or(ApiError::InvalidPage)?;
    Ok(envelope(state, req, total, &page, items))
}

/// Wraps one page of items that are already loaded.
pub fn envelope<T>(
    state: &AppState,
    req: &HttpRequest,
    total: u64,
    page: &Page,
    results: Vec<T>,
) -> Paginated<T> {
    Paginated {
        count: total,
        next: page.has_next.then(|| page_url(state, req, page.number + 1)),
        previous: page
            .has_previous
            .then(|| page_url(state, req, page.number - 1)),
        results,
    }
}
