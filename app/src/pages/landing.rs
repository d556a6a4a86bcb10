//! The page a visitor sees without a portal session: explains that the portal
//! is opened from a link the vendor provides.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::dto::PortalInfo;

/// Deployment information for branding, read through the server's backend.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn load_portal_info() -> Result<PortalInfo, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    backend.0.portal_info().await.map_err(|e| ServerFnError::new(e.to_string()))
}

/// Landing page shown until a portal session exists.
#[component]
pub fn Landing() -> impl IntoView {
    let info = Resource::new(|| (), |_| load_portal_info());
    let (help_open, set_help_open) = signal(false);
    // Effects only run in the browser, so this flips once hydration is done.
    // Browser tests and the "interactive" styling rely on it.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));

    view! {
        <Title text="Admin portal" />
        <main class="card narrow centered" id="main" data-hydrated=move || hydrated.get().to_string()>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match info.await {
                        Ok(info) => view! {
                            <p class="eyebrow">{info.vendor_name.clone()}" admin portal"</p>
                            <h1>"A portal link is required"</h1>
                            <p>
                                "This portal lets your IT team set up single sign-on, user provisioning and "
                                "domain verification for "{info.vendor_name.clone()}". It opens from a "
                                "personal, short-lived link."
                            </p>
                            {info.vendor_url.clone().map(|url| view! {
                                <p><a class="button secondary" href=url>"Back to "{info.vendor_name.clone()}</a></p>
                            })}
                        }.into_any(),
                        Err(_) => view! {
                            <h1>"A portal link is required"</h1>
                            <p role="alert">"The portal could not load its settings. Try again in a minute."</p>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <button
                type="button"
                class="button"
                aria-expanded=move || help_open.get().to_string()
                aria-controls="link-help"
                on:click=move |_| set_help_open.update(|open| *open = !*open)
            >
                {move || if help_open.get() { "Hide help" } else { "How do I get a link?" }}
            </button>
            <Show when=move || help_open.get()>
                <section id="link-help" class="help" aria-live="polite">
                    <h2>"Getting a portal link"</h2>
                    <ol>
                        <li>"Sign in to your vendor's application as an administrator."</li>
                        <li>"Open its settings for single sign-on or user provisioning, or ask your vendor's support team for a link."</li>
                        <li>"Open the link within a few minutes: links expire quickly and work only once."</li>
                    </ol>
                </section>
            </Show>
            <footer class="muted small">"Portico "{env!("CARGO_PKG_VERSION")}</footer>
        </main>
    }
}
