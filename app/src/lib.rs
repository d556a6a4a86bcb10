//! Portico's web UI: Leptos pages and components, the DTOs they share with the
//! server, and the `#[server]` functions the UI calls.
//!
//! The UI never touches storage. Server functions take a [`backend::Backend`]
//! from the Leptos context; the server crate provides it (`ssr` only).
#![recursion_limit = "256"]

pub mod client;
pub mod dto;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod backend;
#[cfg(feature = "hydrate")]
pub mod embed;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::pages::landing::Landing;
use crate::pages::not_found::NotFound;
use crate::pages::portal::{DomainsSection, DsyncSection, PortalHome, SsoSection};

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="referrer" content="no-referrer" />
                <link rel="icon" type="image/svg+xml" href="/pkg/favicon.svg" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

/// Root component: routes of the customer portal.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="portico-css" href="/pkg/portico.css" />
        <Title formatter=|page: String| format!("{page} · Portico") />
        <Router>
            <Routes fallback=|| view! { <NotFound /> }>
                // Async SSR: the full page (resources resolved) arrives in
                // one response, so it reads correctly before and without JS.
                <Route path=path!("/") view=Landing ssr=SsrMode::Async />
                <Route path=path!("/portal") view=PortalHome ssr=SsrMode::Async />
                <Route path=path!("/portal/sso") view=SsoSection ssr=SsrMode::Async />
                <Route path=path!("/portal/directory-sync") view=DsyncSection ssr=SsrMode::Async />
                <Route path=path!("/portal/domains") view=DomainsSection ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
