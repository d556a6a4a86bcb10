//! The SSO wizard: choose the identity provider, follow its guide with the
//! values to paste, enter the IdP's details and attribute mapping, run a real
//! Test sign-in, activate.

use leptos::prelude::*;
use leptos_meta::Title;

use super::common::{CopyValue, message, short_time};
use crate::dto::{ConnectionState, PortalConnection, PortalConnectionForm, PortalSession, PortalTestResult};

#[cfg(feature = "ssr")]
async fn backend() -> Result<(crate::backend::Backend, Option<String>), ServerFnError> {
    Ok((crate::backend::Backend::from_context()?, crate::backend::session_cookie().await))
}

/// Connections of the session's organization.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn list_connections() -> Result<Vec<PortalConnection>, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.connections(token.as_deref()).await.map_err(super::common::backend_error)
}

/// Starts a draft connection for a provider choice.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn start_connection(choice: String) -> Result<PortalConnection, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.start_connection(token.as_deref(), &choice).await.map_err(super::common::backend_error)
}

/// Saves IdP details and the attribute mapping.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn configure_connection(id: String, form: PortalConnectionForm) -> Result<PortalConnection, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.configure_connection(token.as_deref(), &id, form).await.map_err(super::common::backend_error)
}

/// Starts a Test sign-in: the IdP URL to open.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn test_connection(id: String) -> Result<String, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.test_connection(token.as_deref(), &id).await.map_err(super::common::backend_error)
}

/// A Test sign-in's outcome.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn test_result(login: String) -> Result<PortalTestResult, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.test_result(token.as_deref(), &login).await.map_err(super::common::backend_error)
}

/// Activates or deactivates a connection.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn set_connection_active(id: String, active: bool) -> Result<PortalConnection, ServerFnError> {
    let (b, token) = backend().await?;
    b.0.set_connection_active(token.as_deref(), &id, active).await.map_err(super::common::backend_error)
}

/// Deletes a connection.
#[server(prefix = "/_portal/fn", client = crate::client::PorticoClient)]
pub async fn delete_connection(id: String) -> Result<(), ServerFnError> {
    let (b, token) = backend().await?;
    b.0.delete_connection(token.as_deref(), &id).await.map_err(super::common::backend_error)
}

const CHOICES: [(&str, &str); 7] = [
    ("okta-saml", "Okta — SAML"),
    ("okta-oidc", "Okta — OpenID Connect"),
    ("entra-saml", "Microsoft Entra ID — SAML"),
    ("entra-oidc", "Microsoft Entra ID — OpenID Connect"),
    ("google-saml", "Google Workspace — SAML"),
    ("generic-saml", "Other SAML 2.0 identity provider"),
    ("generic-oidc", "Other OpenID Connect provider"),
];

/// The setup steps in the IdP's admin console (docs/sso.md has the same).
fn guide(provider: &str, kind: &str) -> Vec<&'static str> {
    match (provider, kind) {
        ("okta", "saml") => vec![
            "In the Okta Admin Console open Applications → Create App Integration → SAML 2.0.",
            "Single sign-on URL: paste the ACS URL and check “Use this for Recipient URL and Destination URL”. Audience URI (SP Entity ID): paste the SP entity ID.",
            "Name ID format: EmailAddress. Application username: Email.",
            "Attribute statements: email → user.email, firstName → user.firstName, lastName → user.lastName. Optionally a group attribute statement groups matching .*",
            "Finish, then copy the Metadata URL from the Sign On tab into step 2 below.",
            "Assign the application to the people or groups who should sign in.",
        ],
        ("okta", _) => vec![
            "In the Okta Admin Console open Applications → Create App Integration → OIDC → Web Application.",
            "Grant type: Authorization Code. Sign-in redirect URI: paste the redirect URI.",
            "Assign the application to the people or groups who should sign in.",
            "Copy the Client ID and Client secret below; the issuer is https://<your-okta-domain> (or your authorization server's issuer).",
        ],
        ("entra", "saml") => vec![
            "In the Microsoft Entra admin center open Enterprise applications → New application → Create your own application → Integrate any other application.",
            "Single sign-on → SAML → Basic SAML Configuration: Identifier (Entity ID) = the SP entity ID, Reply URL = the ACS URL.",
            "Attributes & Claims: keep the defaults (emailaddress, givenname, surname); add a group claim if you want groups.",
            "SAML Certificates: copy the App Federation Metadata Url into step 2 below.",
            "Users and groups: assign who may sign in.",
        ],
        ("entra", _) => vec![
            "In the Microsoft Entra admin center open App registrations → New registration; Redirect URI (Web) = the redirect URI.",
            "Certificates & secrets → New client secret; copy its value.",
            "Token configuration → add the email optional claim (and groups if wanted).",
            "Issuer: https://login.microsoftonline.com/<tenant-id>/v2.0; client ID: the Application (client) ID.",
        ],
        ("google", _) => vec![
            "In the Google Admin console open Apps → Web and mobile apps → Add app → Add custom SAML app.",
            "Download the IdP metadata (Option 1) and paste it in step 2 below.",
            "Service provider details: ACS URL = the ACS URL, Entity ID = the SP entity ID, Name ID format EMAIL, Name ID = Primary email.",
            "Attribute mapping: First name → firstName, Last name → lastName, Primary email → email; Group membership → groups (optional).",
            "Turn the app ON for the organizational units that should sign in.",
        ],
        (_, "saml") => vec![
            "Create a SAML 2.0 application in your identity provider with the SP metadata URL (or the SP entity ID and the ACS URL, HTTP-POST binding).",
            "Sign the response or the assertion with RSA-SHA256; NameID: the user's email.",
            "Send the attributes email, firstName, lastName and groups (or adjust the mapping in step 2).",
            "Give Portico the identity provider's metadata (URL or XML) in step 2.",
        ],
        _ => vec![
            "Register a confidential web client with the redirect URI, the authorization code grant and PKCE.",
            "Give Portico the issuer (discovery at <issuer>/.well-known/openid-configuration), the client ID and the client secret.",
        ],
    }
}

/// The values to paste into the IdP.
#[component]
fn SpValues(c: PortalConnection) -> impl IntoView {
    let row = |label: &'static str, value: Option<String>| {
        value.map(|v| view! { <dt>{label}</dt><dd><CopyValue label=label value=v /></dd> })
    };
    view! {
        <dl class="record sp-values">
            {row("ACS URL", c.acs_url.clone())}
            {row("SP entity ID", c.sp_entity_id.clone())}
            {row("SP metadata URL", c.sp_metadata_url.clone())}
            {row("Redirect URI", c.redirect_uri.clone())}
        </dl>
    }
}

/// Step 2: what the IdP says, and how attributes map.
#[component]
fn DetailsForm(c: PortalConnection, save: ServerAction<ConfigureConnection>) -> impl IntoView {
    let saml = c.kind == "saml";
    let secret_hint = if c.has_client_secret { "Stored — leave empty to keep it" } else { "Client secret" };
    let idp_fields = if saml {
        view! {
            <label>"Metadata URL"
                <input name="form[metadata_url]" type="url" placeholder="https://…/metadata" value=c.metadata_url.clone().unwrap_or_default() autocomplete="off" />
            </label>
            <label>"…or metadata XML (paste or choose a file)"
                <textarea name="form[metadata_xml]" rows="3" placeholder="<md:EntityDescriptor …>"></textarea>
            </label>
            <MetadataFile />
            <details class="manual">
                <summary>"…or enter the values by hand"</summary>
                <label>"IdP entity ID (issuer)"<input name="form[idp_entity_id]" type="text" autocomplete="off" /></label>
                <label>"IdP single sign-on URL"<input name="form[idp_sso_url]" type="url" autocomplete="off" /></label>
                <label>"IdP signing certificate (PEM)"<textarea name="form[idp_certificate]" rows="3"></textarea></label>
            </details>
            <label class="check">
                <input name="form[allow_idp_initiated]" type="checkbox" checked=c.allow_idp_initiated />
                " Allow sign-in started from the identity provider's dashboard (IdP-initiated)"
            </label>
        }
        .into_any()
    } else {
        view! {
            <label>"Issuer"<input name="form[issuer]" type="url" placeholder="https://login.example.com" value=c.issuer.clone() autocomplete="off" /></label>
            <label>"Client ID"<input name="form[client_id]" type="text" value=c.client_id.clone() autocomplete="off" /></label>
            <label>"Client secret"<input name="form[client_secret]" type="password" placeholder=secret_hint autocomplete="off" /></label>
            <label>"Extra scopes (space-separated, e.g. groups)"<input name="form[scopes]" type="text" value=c.scopes.clone() autocomplete="off" /></label>
        }
        .into_any()
    };
    let current = (!c.idp_entity_id.is_empty()).then(|| {
        view! {
            <p class="muted current-idp">
                "Current: " {c.idp_entity_id.clone()} " → " {c.idp_sso_url.clone()}
                {c.certificates.iter().map(|cert| view! { <br />"Certificate: "{cert.clone()} }).collect_view()}
            </p>
        }
    });
    view! {
        <ActionForm action=save attr:class="details-form">
            <input type="hidden" name="id" value=c.id.clone() />
            {current}
            {idp_fields}
            <fieldset class="mapping">
                <legend>"Attribute mapping"</legend>
                <label>"Email"<input name="form[map_email]" type="text" value=c.map_email.clone() /></label>
                <label>"First name"<input name="form[map_first_name]" type="text" value=c.map_first_name.clone() /></label>
                <label>"Last name"<input name="form[map_last_name]" type="text" value=c.map_last_name.clone() /></label>
                <label>"Groups"<input name="form[map_groups]" type="text" value=c.map_groups.clone() /></label>
            </fieldset>
            <button type="submit" class="button save">"Save"</button>
        </ActionForm>
    }
}

/// Reads a chosen metadata file into the XML field.
#[component]
fn MetadataFile() -> impl IntoView {
    let on_change = move |_ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsCast;
            let Some(input) = _ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) else {
                return;
            };
            let Some(file) = input.files().and_then(|f| f.get(0)) else { return };
            let form = input.form();
            leptos::task::spawn_local(async move {
                let Ok(text) = wasm_bindgen_futures::JsFuture::from(file.text()).await else { return };
                let Some(text) = text.as_string() else { return };
                if let Some(area) = form
                    .and_then(|f| f.query_selector("textarea[name='form[metadata_xml]']").ok().flatten())
                    .and_then(|e| e.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
                {
                    area.set_value(&text);
                }
            });
        }
    };
    view! {
        <label class="file">"Metadata file"<input type="file" accept=".xml,application/xml,text/xml" on:change=on_change /></label>
    }
}

#[component]
fn Attempts(c: PortalConnection) -> impl IntoView {
    if c.attempts.is_empty() {
        return view! { <p class="muted">"No sign-in attempts yet."</p> }.into_any();
    }
    let rows = c
        .attempts
        .into_iter()
        .map(|a| {
            let class = format!("attempt {}", a.outcome);
            view! {
                <tr class=class>
                    <td>{short_time(&a.at)}</td>
                    <td>{a.purpose}</td>
                    <td>{a.outcome}</td>
                    <td>{a.email.unwrap_or_default()}</td>
                    <td>{a.reason.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="attempts">
                <thead><tr><th>"Time"</th><th>"Kind"</th><th>"Outcome"</th><th>"User"</th><th>"Reason"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn ConnectionCard(
    c: PortalConnection,
    save: ServerAction<ConfigureConnection>,
    test: Action<String, Result<String, ServerFnError>>,
    toggle: Action<(String, bool), Result<PortalConnection, ServerFnError>>,
    remove: Action<String, Result<(), ServerFnError>>,
) -> impl IntoView {
    let steps = guide(&c.provider, &c.kind).into_iter().map(|s| view! { <li>{s}</li> }).collect_view();
    let (id_test, id_toggle, id_remove) = (c.id.clone(), c.id.clone(), c.id.clone());
    let active = c.state == ConnectionState::Active;
    let configured = c.configured;
    let tested = c
        .tested_at
        .as_deref()
        .map(|t| format!("Last successful test: {}", short_time(t)))
        .unwrap_or_else(|| "Not tested yet.".to_owned());
    view! {
        <article class="domain-card connection-card" data-connection=c.id.clone() data-state=c.state.as_str() data-kind=c.kind.clone()>
            <header class="domain-head">
                <h2>{c.name.clone()}</h2>
                <span class=format!("badge state-{}", c.state.as_str())>{c.state.title()}</span>
            </header>
            {c.certificate_warning.clone().map(|w| view! { <p class="warning" role="alert">{w}</p> })}
            <section class="step">
                <h3>"1. Set up the application in your identity provider"</h3>
                <ol class="guide">{steps}</ol>
                <SpValues c=c.clone() />
            </section>
            <section class="step">
                <h3>"2. Identity provider details"</h3>
                <DetailsForm c=c.clone() save />
            </section>
            <section class="step">
                <h3>"3. Test sign-in"</h3>
                <p class="muted" data-testid="tested">{tested}</p>
                <button type="button" class="button secondary test" disabled=!configured
                    on:click=move |_| { test.dispatch(id_test.clone()); }>
                    "Test sign-in"
                </button>
            </section>
            <section class="step">
                <h3>"4. Activate"</h3>
                <div class="actions">
                    <button type="button" class=if active { "button secondary deactivate" } else { "button activate" }
                        disabled=!configured
                        on:click=move |_| { toggle.dispatch((id_toggle.clone(), !active)); }>
                        {if active { "Deactivate" } else { "Activate" }}
                    </button>
                    <button type="button" class="button secondary delete" on:click=move |_| { remove.dispatch(id_remove.clone()); }>
                        "Delete"
                    </button>
                </div>
            </section>
            <section class="step">
                <h3>"Recent sign-in attempts"</h3>
                <Attempts c=c.clone() />
            </section>
        </article>
    }
}

/// The Test sign-in outcome after the IdP sent the browser back.
#[component]
fn TestOutcome(login: String) -> impl IntoView {
    let result = Resource::new(move || login.clone(), test_result);
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the test result…"</p> }>
            {move || Suspend::new(async move {
                match result.await {
                    Ok(r) if r.succeeded => view! {
                        <div class="test-result ok" role="status" data-outcome="succeeded">
                            <h2>"Test sign-in succeeded"</h2>
                            <dl class="record">
                                <dt>"Email"</dt><dd data-field="email">{r.email.clone().unwrap_or_default()}</dd>
                                <dt>"First name"</dt><dd data-field="first_name">{r.first_name.clone().unwrap_or_default()}</dd>
                                <dt>"Last name"</dt><dd data-field="last_name">{r.last_name.clone().unwrap_or_default()}</dd>
                                <dt>"Groups"</dt><dd data-field="groups">{r.groups.join(", ")}</dd>
                            </dl>
                            <details><summary>"Full profile"</summary><pre>{r.profile.clone().unwrap_or_default()}</pre></details>
                            <p>"If this is right, activate the connection below."</p>
                        </div>
                    }.into_any(),
                    Ok(r) => view! {
                        <div class="test-result failed" role="alert" data-outcome="failed">
                            <h2>"Test sign-in failed"</h2>
                            <p class="reason">{r.reason.clone().unwrap_or_default()}</p>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <p role="alert" class="error">{message(&e)}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// The SSO page body.
#[component]
pub fn SsoPanel(session: PortalSession) -> impl IntoView {
    let start = ServerAction::<StartConnection>::new();
    let save = ServerAction::<ConfigureConnection>::new();
    let test = Action::new(|id: &String| test_connection(id.clone()));
    let toggle = Action::new(|(id, active): &(String, bool)| set_connection_active(id.clone(), *active));
    let remove = Action::new(|id: &String| delete_connection(id.clone()));
    let connections = Resource::new(
        move || (start.version().get(), save.version().get(), toggle.version().get(), remove.version().get()),
        |_| list_connections(),
    );
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| set_hydrated.set(true));
    let query = leptos_router::hooks::use_query_map();
    let test_login = move || query.with(|q| q.get("test"));

    // Tell an embedding page what changed.
    let s = session.clone();
    Effect::new(move |_| {
        if let Some(Ok(c)) = toggle.value().get() {
            let kind = if c.state == ConnectionState::Active { "sso.enabled" } else { "sso.disabled" };
            notify(&s, kind, &c);
        }
    });
    let s = session.clone();
    Effect::new(move |_| {
        if let Some(Ok(c)) = save.value().get() {
            notify(&s, "connection.updated", &c);
        }
    });
    let s = session;
    Effect::new(move |_| {
        if let Some(Ok(c)) = start.value().get() {
            notify(&s, "connection.created", &c);
        }
    });
    // Test sign-in: off to the IdP.
    Effect::new(move |_| {
        // Only http(s): a `javascript:` URL would run in Portico's origin.
        if let Some(Ok(url)) = test.value().get().filter(|r| r.as_ref().is_ok_and(|u| crate::dto::is_http_url(u))) {
            #[cfg(feature = "hydrate")]
            let _ = leptos::prelude::window().location().assign(&url);
            #[cfg(not(feature = "hydrate"))]
            let _ = url;
        }
    });
    let error = move || {
        start
            .value()
            .get()
            .and_then(|r| r.err())
            .or_else(|| save.value().get().and_then(|r| r.err()))
            .or_else(|| test.value().get().and_then(|r| r.err()))
            .or_else(|| toggle.value().get().and_then(|r| r.err()))
            .or_else(|| remove.value().get().and_then(|r| r.err()))
            .map(|e| message(&e))
    };
    let saved = move || save.value().get().and_then(|r| r.ok()).map(|c| format!("Saved {}.", c.name));
    let options = CHOICES.iter().map(|(id, name)| view! { <option value=*id>{*name}</option> }).collect_view();
    view! {
        <Title text="Single sign-on" />
        <div class="sso-panel" data-hydrated=move || hydrated.get().to_string()>
            <h1>"Single sign-on"</h1>
            <p>"Let your people sign in with your identity provider over SAML or OpenID Connect."</p>
            {move || test_login().map(|login| view! { <TestOutcome login /> })}
            <p role="alert" class="error">{error}</p>
            <p role="status" class="saved">{saved}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading connections…"</p> }>
                {move || Suspend::new(async move {
                    match connections.await {
                        Ok(list) => view! {
                            <div class="connections">
                                {list.into_iter().map(|c| view! { <ConnectionCard c save test toggle remove /> }).collect_view()}
                            </div>
                        }.into_any(),
                        Err(e) => view! { <p role="alert" class="error">{message(&e)}</p> }.into_any(),
                    }
                })}
            </Transition>
            <ActionForm action=start attr:class="add-domain new-connection">
                <label for="connection-choice">"Set up a new connection"</label>
                <div class="inline">
                    <select id="connection-choice" name="choice">{options}</select>
                    <button type="submit" class="button">"Start"</button>
                </div>
            </ActionForm>
        </div>
    }
}

fn notify(session: &PortalSession, kind: &str, c: &PortalConnection) {
    #[cfg(feature = "hydrate")]
    crate::embed::post(
        session,
        kind,
        serde_json::json!({ "connection_id": c.id, "connection_type": c.kind, "state": c.state }),
    );
    #[cfg(not(feature = "hydrate"))]
    let _ = (session, kind, c);
}
