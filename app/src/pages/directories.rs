//! Directory sync in the portal: connect a SCIM directory, copy its base URL
//! and bearer token (shown once) into the IdP, follow its state.

use leptos::prelude::*;
use leptos_meta::Title;

use super::common::{CopyValue, message, short_time};
use crate::dto::{PortalDirectory, PortalDirectoryActivity};

/// Directories of the session's organization.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn list_directories() -> Result<Vec<PortalDirectory>, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.directories(token.as_deref()).await.map_err(super::common::backend_error)
}

/// Creates a directory.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn create_directory(name: String, provider: String) -> Result<PortalDirectory, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.create_directory(token.as_deref(), &name, &provider).await.map_err(super::common::backend_error)
}

/// Replaces a directory's token.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn rotate_directory_token(id: String) -> Result<PortalDirectory, ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.rotate_directory_token(token.as_deref(), &id).await.map_err(super::common::backend_error)
}

/// Deletes a directory.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn delete_directory(id: String) -> Result<(), ServerFnError> {
    let backend = crate::backend::Backend::from_context()?;
    let token = crate::backend::session_cookie().await;
    backend.0.delete_directory(token.as_deref(), &id).await.map_err(super::common::backend_error)
}

const PROVIDERS: [(&str, &str); 6] = [
    ("okta", "Okta"),
    ("entra", "Microsoft Entra ID"),
    ("google", "Google Workspace"),
    ("onelogin", "OneLogin"),
    ("jumpcloud", "JumpCloud"),
    ("generic", "Other SCIM 2.0 provider"),
];

fn provider_name(id: &str) -> &'static str {
    PROVIDERS.iter().find(|(p, _)| *p == id).map(|(_, n)| *n).unwrap_or("SCIM 2.0")
}

/// The token, right after creation or rotation: the only time it is shown.
#[component]
fn FreshToken(directory: PortalDirectory) -> impl IntoView {
    directory.bearer_token.map(|token| {
        view! {
            <div class="fresh-token" role="status">
                <p>
                    <strong>"Copy this bearer token into "{provider_name(&directory.provider)}" now."</strong>
                    " It is shown only once; if you lose it, generate a new one."
                </p>
                <CopyValue label="bearer token" value=token />
            </div>
        }
    })
}

#[component]
fn DirectoryCard(
    directory: PortalDirectory,
    refresh: WriteSignal<u32>,
    rotate: Action<String, Result<PortalDirectory, ServerFnError>>,
    remove: Action<String, Result<(), ServerFnError>>,
) -> impl IntoView {
    let (for_rotate, for_remove) = (directory.id.clone(), directory.id.clone());
    let last = directory
        .last_request_at
        .as_deref()
        .map(|t| format!("Last request from your identity provider: {}", short_time(t)))
        .unwrap_or_else(|| "No request from your identity provider yet.".to_owned());
    view! {
        <article class="domain-card directory-card" data-directory=directory.id.clone() data-state=directory.state.as_str()>
            <header class="domain-head">
                <h2>{directory.name.clone()}</h2>
                <span class=format!("badge state-{}", directory.state.as_str())>{directory.state.title()}</span>
            </header>
            <p class="muted">{provider_name(&directory.provider)}</p>
            <dl class="record">
                <dt>"SCIM base URL"</dt>
                <dd><CopyValue label="SCIM base URL" value=directory.scim_base_url.clone() /></dd>
                <dt>"Authentication"</dt>
                <dd>"HTTP header, bearer token"</dd>
            </dl>
            <p class="status-line" data-testid="last-request">{last}</p>
            <Activity activity=directory.activity.clone() refresh />
            <div class="actions">
                <button type="button" class="button secondary rotate" on:click=move |_| { rotate.dispatch(for_rotate.clone()); }>
                    "Generate new token"
                </button>
                <button type="button" class="button secondary" on:click=move |_| { remove.dispatch(for_remove.clone()); }>
                    "Delete"
                </button>
            </div>
        </article>
    }
}

/// `HH:MM:SS` of an RFC 3339 UTC time.
fn clock_time(rfc3339: &str) -> String {
    rfc3339.get(11..19).map(|t| format!("{t} UTC")).unwrap_or_else(|| rfc3339.to_owned())
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=399 => "ok",
        400..=499 => "client-error",
        _ => "server-error",
    }
}

/// What the IdP provisioned and asked lately, with a refresh button.
#[component]
fn Activity(activity: Option<PortalDirectoryActivity>, refresh: WriteSignal<u32>) -> impl IntoView {
    view! {
        <section class="activity">
            <div class="activity-head">
                <h3>"Activity"</h3>
                <button type="button" class="button secondary refresh" on:click=move |_| refresh.update(|n| *n += 1)>
                    "Refresh"
                </button>
            </div>
            {activity.map(|a| view! { <ActivityTables activity=a /> })}
        </section>
    }
}

#[component]
fn ActivityTables(activity: PortalDirectoryActivity) -> impl IntoView {
    let last_sync = activity
        .last_sync_at
        .as_deref()
        .map(|t| format!("Last sync: {}", short_time(t)))
        .unwrap_or_else(|| "Not synced yet.".to_owned());
    let users = activity
        .users
        .into_iter()
        .map(|u| {
            let key = u.username.clone();
            view! {
                <tr data-user=key>
                    <td>{u.username}</td>
                    <td>{u.email.unwrap_or_default()}</td>
                    <td>{u.name.unwrap_or_default()}</td>
                    <td><span class=format!("badge state-{}", u.state)>{u.state.clone()}</span></td>
                </tr>
            }
        })
        .collect_view();
    let groups = activity
        .groups
        .into_iter()
        .map(|g| {
            let key = g.name.clone();
            view! { <tr data-group=key><td>{g.name}</td><td>{g.members}</td></tr> }
        })
        .collect_view();
    let requests = activity
        .requests
        .into_iter()
        .map(|r| {
            view! {
                <tr class=format!("request {}", status_class(r.status))>
                    <td>{clock_time(&r.at)}</td>
                    <td><code>{r.method}" "{r.path}</code></td>
                    <td class="status">{r.status}</td>
                    <td>{r.latency_ms}" ms"</td>
                    <td>{r.detail.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <p class="status-line" data-testid="last-sync">{last_sync}</p>
        <h4>{format!("Users ({}, {} active)", activity.user_count, activity.active_user_count)}</h4>
        <div class="table-wrap">
            <table class="users">
                <thead><tr><th>"User name"</th><th>"Email"</th><th>"Name"</th><th>"Status"</th></tr></thead>
                <tbody>{users}</tbody>
            </table>
        </div>
        <h4>{format!("Groups ({})", activity.group_count)}</h4>
        <div class="table-wrap">
            <table class="groups">
                <thead><tr><th>"Name"</th><th>"Members"</th></tr></thead>
                <tbody>{groups}</tbody>
            </table>
        </div>
        <h4>"Recent requests from your identity provider"</h4>
        <div class="table-wrap">
            <table class="requests">
                <thead><tr><th>"Time"</th><th>"Request"</th><th>"Status"</th><th>"Latency"</th><th>"Error"</th></tr></thead>
                <tbody>{requests}</tbody>
            </table>
        </div>
    }
}

/// The directory sync page body.
#[component]
pub fn DirectoriesPanel() -> impl IntoView {
    let create = ServerAction::<CreateDirectory>::new();
    let rotate = Action::new(|id: &String| rotate_directory_token(id.clone()));
    let remove = Action::new(|id: &String| delete_directory(id.clone()));
    let (refreshed, refresh) = signal(0u32);
    let directories = Resource::new(
        move || (create.version().get(), rotate.version().get(), remove.version().get(), refreshed.get()),
        |_| list_directories(),
    );
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    // The newest token (create or rotate), shown until the next action.
    let fresh = move || {
        let created = create.value().get().and_then(|r| r.ok());
        let rotated = rotate.value().get().and_then(|r| r.ok());
        rotated.or(created)
    };
    let error = move || {
        create
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| rotate.value().get().and_then(|r| r.err()))
            .or_else(|| remove.value().get().and_then(|r| r.err()))
            .map(|e| message(&e))
    };
    let options = PROVIDERS.iter().map(|(id, name)| view! { <option value=*id>{*name}</option> }).collect_view();
    view! {
        <Title text="Directory sync" />
        <div class="directories-panel" data-hydrated=move || hydrated.get().to_string()>
            <h1>"Directory sync"</h1>
            <p>
                "Connect your identity provider over SCIM 2.0 so users and groups are provisioned and "
                "deprovisioned automatically."
            </p>
            <ActionForm action=create attr:class="add-domain">
                <label for="directory-name">"Name"</label>
                <input id="directory-name" name="name" type="text" placeholder="Employees" required autocomplete="off" />
                <label for="directory-provider">"Identity provider"</label>
                <div class="inline">
                    <select id="directory-provider" name="provider">{options}</select>
                    <button type="submit" class="button">"Create directory"</button>
                </div>
            </ActionForm>
            <p role="alert" class="error">{error}</p>
            {move || fresh().map(|d| view! { <FreshToken directory=d /> })}
            <Transition fallback=|| view! { <p class="muted">"Loading directories…"</p> }>
                {move || Suspend::new(async move {
                    match directories.await {
                        Ok(list) if list.is_empty() => view! {
                            <p class="muted">"No directory yet. Create one, then paste its URL and token into your identity provider's SCIM settings."</p>
                        }.into_any(),
                        Ok(list) => view! {
                            <div class="domains">
                                {list.into_iter().map(|d| view! { <DirectoryCard directory=d refresh rotate remove /> }).collect_view()}
                            </div>
                        }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}
