//! Offset pagination as GitLab does it (reference §0): `page` from 1, `per_page` 20 by
//! default and at most 100, and the `X-*` and `Link` headers on every list response.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::params::Check;

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;

#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

/// Reads `page` and `per_page`; out-of-range values are clamped as Kaminari does, values
/// that are not integers are Grape errors.
pub fn page_params(c: &mut Check) -> Page {
    let page = c.int("page").unwrap_or(1).max(1) as u64;
    let per_page = match c.int("per_page") {
        Some(n) if n >= 1 => (n as u64).min(MAX_PER_PAGE),
        _ => DEFAULT_PER_PAGE,
    };
    Page { page, per_page }
}

fn link(base: &str, uri: &Uri, page: u64, per_page: u64) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(query) = uri.query() {
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            // The caller's own token must not be echoed back into headers.
            if k != "page" && k != "per_page" && k != "private_token" && k != "access_token" {
                q.append_pair(&k, &v);
            }
        }
    }
    q.append_pair("page", &page.to_string());
    q.append_pair("per_page", &per_page.to_string());
    format!("{base}{}?{}", uri.path(), q.finish())
}

/// One page of `items` as a JSON array with GitLab's pagination headers; without `totals`
/// the headers that need a count are left out.
pub fn respond(items: Vec<Value>, page: Page, totals: bool, base: &str, uri: &Uri) -> Response {
    let total = items.len() as u64;
    let total_pages = total.div_ceil(page.per_page).max(1);
    let start = ((page.page - 1) * page.per_page).min(total) as usize;
    let end = (start + page.per_page as usize).min(items.len());
    let body: Vec<Value> = items[start..end].to_vec();
    let next = (page.page < total_pages).then_some(page.page + 1);
    let prev = (page.page > 1).then(|| (page.page - 1).min(total_pages));

    let mut links = Vec::new();
    if let Some(p) = prev {
        links.push(format!(
            "<{}>; rel=\"prev\"",
            link(base, uri, p, page.per_page)
        ));
    }
    if let Some(n) = next {
        links.push(format!(
            "<{}>; rel=\"next\"",
            link(base, uri, n, page.per_page)
        ));
    }
    links.push(format!(
        "<{}>; rel=\"first\"",
        link(base, uri, 1, page.per_page)
    ));
    if totals {
        links.push(format!(
            "<{}>; rel=\"last\"",
            link(base, uri, total_pages, page.per_page)
        ));
    }

    let mut res = Json(Value::Array(body)).into_response();
    let h = res.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-page", page.page.to_string());
    set("x-per-page", page.per_page.to_string());
    set(
        "x-next-page",
        next.map(|n| n.to_string()).unwrap_or_default(),
    );
    set(
        "x-prev-page",
        prev.map(|n| n.to_string()).unwrap_or_default(),
    );
    if totals {
        set("x-total", total.to_string());
        set("x-total-pages", total_pages.to_string());
    }
    if let Ok(v) = HeaderValue::from_str(&links.join(", ")) {
        h.insert(header::LINK, v);
    }
    res
}
