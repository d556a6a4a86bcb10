//! Domain verification in the portal: add a domain, publish the TXT record
//! shown, verify, and follow the status.

use leptos::prelude::*;
use leptos_meta::Title;

use super::common::{CopyValue, message, short_time};
use crate::dto::{DomainState, PortalDomain};

/// Domains of the session's organization.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn list_domains() -> Result<Vec<PortalDomain>, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.domains(token.as_deref()).await.map_err(super::common::backend_error)
}

/// Adds a domain.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn add_domain(domain: String) -> Result<PortalDomain, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.add_domain(token.as_deref(), &domain).await.map_err(super::common::backend_error)
}

/// Checks a domain's record now.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn verify_domain(domain: String) -> Result<PortalDomain, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.verify_domain(token.as_deref(), &domain).await.map_err(super::common::backend_error)
}

/// Removes a domain.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn remove_domain(domain: String) -> Result<(), ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.remove_domain(token.as_deref(), &domain).await.map_err(super::common::backend_error)
}

/// Where to add a TXT record at common DNS hosts.
fn provider_hints() -> impl IntoView {
    view! {
        <details class="hints">
            <summary>"Where do I add this record?"</summary>
            <ul>
                <li><strong>"Cloudflare"</strong>": DNS → Records → Add record → Type TXT; Name is the host above."</li>
                <li><strong>"Amazon Route 53"</strong>": Hosted zones → your domain → Create record → Record type TXT; wrap the value in double quotes."</li>
                <li><strong>"Google Cloud DNS / Squarespace Domains"</strong>": DNS settings → Custom records → TXT; host name as above."</li>
                <li><strong>"GoDaddy"</strong>": Domain → DNS → Add New Record → TXT; Name is the host above (without your domain)."</li>
                <li><strong>"Microsoft Azure DNS"</strong>": DNS zone → + Record set → Type TXT; Name is the host above."</li>
            </ul>
            <p class="muted">"Changes usually appear within minutes, but DNS caches can delay them up to the record's TTL. We re-check pending domains automatically."</p>
        </details>
    }
}

#[component]
fn DomainCard(
    domain: PortalDomain,
    verify: Action<String, Result<PortalDomain, ServerFnError>>,
    remove: Action<String, Result<(), ServerFnError>>,
) -> impl IntoView {
    let name = domain.domain.clone();
    let (for_verify, for_remove) = (name.clone(), name.clone());
    let verified = domain.state == DomainState::Verified;
    let pending_verify = verify.pending();
    let last = match (&domain.last_checked_at, &domain.last_result) {
        (Some(at), Some(result)) => format!("Last checked {}: {}", short_time(at), result),
        _ => "Not checked yet.".to_owned(),
    };
    let state_class = format!("badge state-{}", domain.state.as_str());
    view! {
        <article class="domain-card" data-domain=name.clone() data-state=domain.state.as_str()>
            <header class="domain-head">
                <h2>{name.clone()}</h2>
                <span class=state_class>{domain.state.title()}</span>
            </header>
            {(!verified).then(|| view! {
                <p>"Create this DNS record at your DNS provider, then choose Verify now."</p>
                <dl class="record">
                    <dt>"Type"</dt>
                    <dd><code>"TXT"</code></dd>
                    <dt>"Name / host"</dt>
                    <dd>
                        <CopyValue label="record name" value=domain.record_host.clone() />
                        <span class="muted small">"Full name: "{domain.record_name.clone()}</span>
                    </dd>
                    <dt>"Value"</dt>
                    <dd><CopyValue label="record value" value=domain.record_value.clone() /></dd>
                </dl>
                {provider_hints()}
            }.into_any())}
            <p class="status-line" data-testid="last-result">{last}</p>
            {domain.expires_at.clone().filter(|_| !verified).map(|at| view! {
                <p class="muted small">"Verification must succeed by "{short_time(&at)}"."</p>
            })}
            <div class="actions">
                {(!verified).then(|| view! {
                    <button
                        type="button"
                        class="button verify"
                        disabled=move || pending_verify.get()
                        on:click=move |_| { verify.dispatch(for_verify.clone()); }
                    >
                        {move || if pending_verify.get() { "Checking…" } else { "Verify now" }}
                    </button>
                }.into_any())}
                <button type="button" class="button secondary" on:click=move |_| { remove.dispatch(for_remove.clone()); }>
                    "Remove"
                </button>
            </div>
        </article>
    }
}

/// The domains page body.
#[component]
pub fn DomainsPanel() -> impl IntoView {
    let add = ServerAction::<AddDomain>::new();
    let verify = Action::new(|d: &String| verify_domain(d.clone()));
    let remove = Action::new(|d: &String| remove_domain(d.clone()));
    let domains = Resource::new(
        move || (add.version().get(), verify.version().get(), remove.version().get()),
        |_| list_domains(),
    );
    let add_error = move || add.value().get().and_then(|r| r.err()).map(|e| message(&e));
    let action_error = move || {
        verify
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| remove.value().get().and_then(|r| r.err()))
            .map(|e| message(&e))
    };
    // Effects run only in the browser: marks the panel interactive.
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    // A successful add clears the field for the next domain.
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if matches!(add.value().get(), Some(Ok(_)))
            && let Some(el) = input.get()
        {
            el.set_value("");
        }
    });
    view! {
        <Title text="Domain verification" />
        <div class="domains-panel" data-hydrated=move || hydrated.get().to_string()>
        <h1>"Domain verification"</h1>
        <p>
            "Prove that your organization controls its email domains by publishing a DNS TXT record. "
            "Verified domains route your users to your single sign-on."
        </p>
        <ActionForm action=add attr:class="add-domain">
            <label for="domain-input">"Domain"</label>
            <div class="inline">
                <input node_ref=input id="domain-input" name="domain" type="text" placeholder="example.com" required autocomplete="off" />
                <button type="submit" class="button">"Add domain"</button>
            </div>
        </ActionForm>
        <p role="alert" class="error">{add_error}</p>
        <p role="alert" class="error">{action_error}</p>
        <Transition fallback=|| view! { <p class="muted">"Loading domains…"</p> }>
            {move || Suspend::new(async move {
                match domains.await {
                    Ok(list) if list.is_empty() => view! {
                        <p class="muted">"No domains yet. Add the domain your users' email addresses end in."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <div class="domains">
                            {list.into_iter().map(|d| view! { <DomainCard domain=d verify remove /> }).collect_view()}
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p role="alert" class="error">{message(&e)}</p> }.into_any(),
                }
            })}
        </Transition>
        </div>
    }
}
