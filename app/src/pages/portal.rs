//! The portal shell: branding, navigation limited to the session's intents,
//! session expiry handling, and the sections themselves.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_location;

use crate::dto::{Intent, PortalSession, SessionState};

/// The visitor's portal session, looked up from the session cookie.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn current_session() -> Result<SessionState, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.session(token.as_deref()).await.map_err(|e| ServerFnError::new(e.to_string()))
}

/// Sets the HTTP status of the server-rendered response.
fn set_status(_code: u16) {
    #[cfg(feature = "ssr")]
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>()
        && let Ok(code) = http::StatusCode::from_u16(_code)
    {
        resp.set_status(code);
    }
}

/// Loads the session and renders `content` inside the shell when the session
/// allows `intent` (`None`: the overview, allowed for every session).
#[component]
fn PortalFrame(intent: Option<Intent>, content: fn(PortalSession) -> AnyView) -> impl IntoView {
    let session = Resource::new(|| (), |_| current_session());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match session.await {
                    Ok(SessionState::Active(s)) => {
                        if intent.is_some_and(|i| !s.intents.contains(&i)) {
                            set_status(403);
                            let body = view! { <NotInThisLink /> }.into_any();
                            view! { <Shell session=s active=intent body /> }.into_any()
                        } else {
                            let body = content(s.clone());
                            view! { <Shell session=s active=intent body /> }.into_any()
                        }
                    }
                    Ok(SessionState::Missing) => {
                        set_status(401);
                        view! { <SessionRequired /> }.into_any()
                    }
                    Err(_) => {
                        set_status(503);
                        view! {
                            <main class="card narrow centered" id="main">
                                <h1>"The portal is unavailable"</h1>
                                <p role="alert">"Something went wrong on our side. Reload the page in a minute."</p>
                            </main>
                        }
                            .into_any()
                    }
                }
            })}
        </Suspense>
    }
}

/// Header, navigation and main area, branded for the vendor.
#[component]
fn Shell(session: PortalSession, active: Option<Intent>, body: AnyView) -> impl IntoView {
    let style = session.branding.accent_color.as_ref().map(|c| format!("--portico-accent: {c};")).unwrap_or_default();
    let vendor = session.branding.vendor_name.clone();
    let (expiry, set_expiry) = signal(Expiry::Active);
    // Browser only (Effects do not run on the server).
    let for_effect = session.clone();
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        crate::embed::start(&for_effect, set_expiry);
        #[cfg(not(feature = "hydrate"))]
        let _ = (&for_effect, set_expiry);
    });
    let path = use_location().pathname;
    let nav_item = move |href: &'static str, label: &'static str, is_active: bool| {
        let _ = path;
        view! {
            <li>
                <a href=href aria-current=if is_active { Some("page") } else { None }>
                    {label}
                </a>
            </li>
        }
    };
    let items = session.intents.iter().map(|i| nav_item(i.path(), i.title(), active == Some(*i))).collect_view();
    view! {
        <div class="portal" style=style>
            <a class="skip-link" href="#main">"Skip to content"</a>
            <header class="portal-header">
                <div class="brand">
                    {session.branding.logo_url.clone().map(|src| {
                        view! { <img class="logo" src=src alt=format!("{vendor} logo") /> }
                    })}
                    <div>
                        <p class="vendor-name">{session.branding.vendor_name.clone()}</p>
                        <p class="org-name">
                            "Admin portal for "<strong>{session.organization_name.clone()}</strong>
                        </p>
                    </div>
                </div>
                {session.return_url.clone().map(|url| {
                    view! {
                        <a class="button secondary back" href=url target="_top">
                            "Back to "{session.branding.vendor_name.clone()}
                        </a>
                    }
                })}
            </header>
            <div class="portal-body">
                <nav class="portal-nav" aria-label="Portal sections">
                    <ul>{nav_item("/portal", "Overview", active.is_none())} {items}</ul>
                </nav>
                <main id="main" class="card portal-main" tabindex="-1">
                    {body}
                </main>
            </div>
            <SessionBanner expiry vendor=session.branding.vendor_name.clone() />
        </div>
    }
}

/// Client-side view of the session's remaining life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Active,
    /// Ends within a couple of minutes.
    Expiring,
    Expired,
}

#[component]
fn SessionBanner(expiry: ReadSignal<Expiry>, vendor: String) -> impl IntoView {
    view! {
        <div role="status" aria-live="polite" class="session-banner" data-expiry=move || format!("{:?}", expiry.get())>
            {move || match expiry.get() {
                Expiry::Active => None,
                Expiry::Expiring => Some(view! {
                    <p class="banner warn">"This session ends in less than two minutes. Save your work."</p>
                }.into_any()),
                Expiry::Expired => Some(view! {
                    <p class="banner error">
                        "This session has ended. Ask "{vendor.clone()}" for a new portal link to continue."
                    </p>
                }.into_any()),
            }}
        </div>
    }
}

#[component]
fn SessionRequired() -> impl IntoView {
    view! {
        <Title text="Session required" />
        <main class="card narrow centered" id="main">
            <h1>"Your portal session has ended"</h1>
            <p>
                "Portal sessions start from a personal link and end after a period of inactivity. "
                "Ask your vendor for a new portal link to continue."
            </p>
        </main>
    }
}

#[component]
fn NotInThisLink() -> impl IntoView {
    view! {
        <Title text="Not available" />
        <h1>"Not part of this link"</h1>
        <p>
            "The link you used does not include this section. Ask your vendor for a link that includes it."
        </p>
    }
}

fn overview(session: PortalSession) -> AnyView {
    let cards = session
        .intents
        .iter()
        .map(|i| {
            view! {
                <li class="intent-card">
                    <h2><a href=i.path()>{i.title()}</a></h2>
                    <p>{i.summary()}</p>
                </li>
            }
        })
        .collect_view();
    view! {
        <Title text="Overview" />
        <h1>"Set up "{session.branding.vendor_name.clone()}" for "{session.organization_name.clone()}</h1>
        <p class="muted">"Choose what to configure. Changes take effect as soon as you activate them."</p>
        <ul class="intent-cards">{cards}</ul>
    }
    .into_any()
}

/// `/portal`: overview of what this link allows.
#[component]
pub fn PortalHome() -> impl IntoView {
    view! { <PortalFrame intent=None content=overview /> }
}

/// `/portal/sso`.
#[component]
pub fn SsoSection() -> impl IntoView {
    view! {
        <PortalFrame
            intent=Some(Intent::Sso)
            content=|session| view! { <super::sso::SsoPanel session /> }.into_any()
        />
    }
}

/// `/portal/directory-sync`.
#[component]
pub fn DsyncSection() -> impl IntoView {
    view! {
        <PortalFrame
            intent=Some(Intent::Dsync)
            content=|_| view! { <super::directories::DirectoriesPanel /> }.into_any()
        />
    }
}

/// `/portal/domains`.
#[component]
pub fn DomainsSection() -> impl IntoView {
    view! {
        <PortalFrame
            intent=Some(Intent::DomainVerification)
            content=|_| view! { <super::domains::DomainsPanel /> }.into_any()
        />
    }
}
