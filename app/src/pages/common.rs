//! Pieces shared by portal sections.

use leptos::prelude::*;

/// A backend error as a server function error whose message the UI shows.
#[cfg(feature = "ssr")]
pub fn backend_error(e: crate::backend::BackendError) -> ServerFnError {
    ServerFnError::ServerError(e.0)
}

/// The message of a server function error, without framework prefixes.
pub fn message(e: &ServerFnError) -> String {
    match e {
        ServerFnError::ServerError(m) => m.clone(),
        other => format!("Something went wrong ({other}). Try again."),
    }
}

/// `2026-11-23T07:40:41.71Z` → `2026-11-23 07:40 UTC`.
pub fn short_time(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(head) => format!("{} UTC", head.replace('T', " ")),
        None => rfc3339.to_owned(),
    }
}

#[cfg(feature = "hydrate")]
fn copy_to_clipboard(text: &str) -> bool {
    use leptos::wasm_bindgen::{JsCast, JsValue};
    let get = |target: &JsValue, key: &str| js_sys::Reflect::get(target, &JsValue::from_str(key)).ok();
    let Some(navigator) = get(&js_sys::global(), "navigator") else { return false };
    let Some(clipboard) = get(&navigator, "clipboard").filter(|c| !c.is_undefined()) else { return false };
    let Some(write) = get(&clipboard, "writeText").and_then(|f| f.dyn_into::<js_sys::Function>().ok()) else {
        return false;
    };
    write.call1(&clipboard, &JsValue::from_str(text)).is_ok()
}

/// A value to paste into a DNS console, with a copy button.
#[component]
pub fn CopyValue(label: &'static str, value: String) -> impl IntoView {
    let (copied, set_copied) = signal(false);
    let for_click = value.clone();
    let on_click = move |_| {
        #[cfg(feature = "hydrate")]
        set_copied.set(copy_to_clipboard(&for_click));
        #[cfg(not(feature = "hydrate"))]
        let _ = (&for_click, set_copied);
    };
    view! {
        <div class="copy-value">
            <code>{value}</code>
            <button type="button" class="button small secondary" on:click=on_click aria-label=format!("Copy {label}")>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
        </div>
    }
}
