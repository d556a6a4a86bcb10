//! Browser-facing protections applied to the whole router:
//! - a strict Content-Security-Policy on every HTML response, with a fresh
//!   nonce per request that the Leptos shell puts on its hydration scripts;
//! - cross-site request refusal for the portal's server functions
//!   (`/_portal/fn/*`): the request must come from Portico's own origin
//!   (`Sec-Fetch-Site`, else `Origin`) and carry the header that only the
//!   portal's own client sets ([`app::client::CSRF_HEADER`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;

/// The CSP nonce of the current request (in the request's extensions).
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

/// What the CSP of this deployment says besides the nonce.
#[derive(Debug, Clone)]
pub struct CspPolicy {
    /// `frame-ancestors …` (the vendor's embed origins, or `'none'`).
    pub frame_ancestors: String,
}

impl CspPolicy {
    /// The header value for an HTML response carrying `nonce`.
    pub fn html(&self, nonce: &str) -> String {
        format!(
            "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; connect-src 'self'; \
             object-src 'none'; base-uri 'none'; form-action 'self'; {}",
            self.frame_ancestors
        )
    }
}

fn new_nonce() -> Arc<str> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes).expect("OS random source available");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes).into()
}

/// Gives the request a nonce and sets the full CSP on HTML responses (other
/// responses keep the `frame-ancestors`-only policy set further out).
pub async fn content_security_policy(State(policy): State<Arc<CspPolicy>>, mut req: Request, next: Next) -> Response {
    let nonce = new_nonce();
    req.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(req).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if is_html && let Ok(value) = HeaderValue::from_str(&policy.html(&nonce)) {
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// Hands the request's nonce to Leptos (called from the context closure):
/// `HydrationScripts` and the resource scripts then carry it.
pub fn provide_leptos_nonce() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(parts) = use_context::<axum::http::request::Parts>()
        && let Some(nonce) = parts.extensions.get::<CspNonce>()
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce.0.clone()));
    }
}

/// Portico's own origin, as browsers send it in `Origin`.
#[derive(Debug, Clone)]
pub struct OwnOrigin(pub String);

impl OwnOrigin {
    /// `scheme://host[:port]` of `public_url`.
    pub fn of(public_url: &str) -> Self {
        let origin = url::Url::parse(public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|_| public_url.trim_end_matches('/').to_owned());
        Self(origin)
    }
}

/// Why a server-function request is refused, `None` when it may run.
pub fn cross_site_refusal(method: &Method, headers: &HeaderMap, own: &OwnOrigin) -> Option<&'static str> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Ours by public URL, or by the Host the browser addressed.
    let is_own = |origin: &str| {
        origin == own.0 || origin.split_once("://").is_some_and(|(_, authority)| Some(authority) == text("host"))
    };
    let fetch_site = text("sec-fetch-site");
    if fetch_site.is_some_and(|site| site != "same-origin") {
        return Some("the request was sent from another site");
    }
    match text("origin") {
        Some(origin) if !is_own(origin) => return Some("the request was sent from another origin"),
        // Older browsers without Fetch Metadata: the Origin must be there.
        None if fetch_site.is_none() => return Some("the request names no origin"),
        _ => {}
    }
    if text(app::client::CSRF_HEADER) != Some("1") {
        return Some("the request did not come from the portal's own pages");
    }
    None
}

/// Refuses cross-site state-changing requests to the portal's server
/// functions with a readable 403 page.
pub async fn refuse_cross_site(State(own): State<Arc<OwnOrigin>>, req: Request<Body>, next: Next) -> Response {
    if req.uri().path().starts_with("/_portal/fn/")
        && let Some(reason) = cross_site_refusal(req.method(), req.headers(), &own)
    {
        tracing::warn!(path = %req.uri().path(), reason, "cross-site portal request refused");
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Request refused · Portico</title>\
                 <link rel=\"stylesheet\" href=\"/pkg/portico.css\"></head><body><main class=\"card narrow centered\">\
                 <h1>Request refused</h1><p role=\"alert\">The portal only accepts changes made from its own pages \
                 with JavaScript on ({reason}). Go back to the portal, reload it and try again.</p></main></body></html>"
        );
        return (StatusCode::FORBIDDEN, Html(body)).into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_same_origin_requests_from_the_portal_client_pass() {
        let own = OwnOrigin::of("https://portico.example/");
        assert_eq!(own.0, "https://portico.example");
        let post = Method::POST;
        let ok = headers(&[
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://portico.example"),
            ("x-portico-csrf", "1"),
        ]);
        assert_eq!(cross_site_refusal(&post, &ok, &own), None);
        // A form on a sibling subdomain: same-site, not same-origin, no header.
        let sibling = headers(&[("sec-fetch-site", "same-site"), ("origin", "https://blog.portico.example")]);
        assert!(cross_site_refusal(&post, &sibling, &own).is_some());
        // A same-origin form post (no JS) lacks the header.
        let form = headers(&[("sec-fetch-site", "same-origin"), ("origin", "https://portico.example")]);
        assert_eq!(
            cross_site_refusal(&post, &form, &own),
            Some("the request did not come from the portal's own pages")
        );
        // No Fetch Metadata: the Origin decides, by public URL or Host.
        let old = headers(&[("origin", "http://127.0.0.1:4000"), ("host", "127.0.0.1:4000"), ("x-portico-csrf", "1")]);
        assert_eq!(cross_site_refusal(&post, &old, &own), None);
        let foreign =
            headers(&[("origin", "https://evil.example"), ("host", "portico.example"), ("x-portico-csrf", "1")]);
        assert!(cross_site_refusal(&post, &foreign, &own).is_some());
        assert!(cross_site_refusal(&post, &headers(&[("x-portico-csrf", "1")]), &own).is_some(), "no origin at all");
        assert_eq!(cross_site_refusal(&Method::GET, &HeaderMap::new(), &own), None);
    }

    #[test]
    fn the_html_policy_is_strict() {
        let p = CspPolicy { frame_ancestors: "frame-ancestors 'none'".into() }.html("abc");
        for part in ["script-src 'self' 'nonce-abc'", "object-src 'none'", "base-uri 'none'", "form-action 'self'"] {
            assert!(p.contains(part), "{p}");
        }
        assert!(!p.contains("unsafe-eval'") || p.contains("wasm-unsafe-eval"), "{p}");
    }
}
