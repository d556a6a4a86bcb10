//! Shown for any path the portal does not know.

use leptos::prelude::*;
use leptos_meta::Title;

/// 404 page. Sets the HTTP status during SSR.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
            resp.set_status(http::StatusCode::NOT_FOUND);
        }
    }
    view! {
        <Title text="Page not found" />
        <main class="card narrow centered" id="main">
            <h1>"Page not found"</h1>
            <p>"This address is not part of the admin portal. Open the portal from the link your vendor sent you."</p>
        </main>
    }
}
