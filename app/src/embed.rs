//! Browser side of embedding: `postMessage` UI events to the embedding page
//! and the session expiry timers. Compiled into the wasm bundle only.
//!
//! Messages are sent once per allowed embed origin with that origin as the
//! `targetOrigin`, so the browser delivers them only to a parent whose origin
//! is on the vendor's list, and never to anyone else. Schema: `docs/portal.md`.

use std::time::Duration;

use leptos::prelude::*;
use leptos::wasm_bindgen::JsValue;

use crate::dto::PortalSession;
use crate::pages::portal::Expiry;

/// Warn this long before the session ends.
const EXPIRING_LEAD_MS: f64 = 120_000.0;

/// Announces `portal.loaded` and arms the expiry timers.
pub fn start(session: &PortalSession, set_expiry: WriteSignal<Expiry>) {
    let path = leptos::prelude::window().location().pathname().unwrap_or_default();
    post(
        session,
        "portal.loaded",
        serde_json::json!({
            "path": path,
            "intents": session.intents.iter().map(|i| i.as_str()).collect::<Vec<_>>(),
            "expires_at": iso(session.expires_at_ms as f64),
        }),
    );
    let now = js_sys::Date::now();
    let end = session.expires_at_ms as f64;
    let warn_in = (end - EXPIRING_LEAD_MS - now).max(0.0);
    let expire_in = (end - now).max(0.0);
    let s = session.clone();
    set_timeout(
        move || {
            set_expiry.set(Expiry::Expiring);
            let left = ((s.expires_at_ms as f64 - js_sys::Date::now()) / 1000.0).max(0.0).round();
            post(
                &s,
                "portal.session_expiring",
                serde_json::json!({ "expires_at": iso(s.expires_at_ms as f64), "seconds_left": left }),
            );
        },
        Duration::from_millis(warn_in as u64),
    );
    let s = session.clone();
    set_timeout(
        move || {
            set_expiry.set(Expiry::Expired);
            post(&s, "portal.session_expired", serde_json::json!({}));
        },
        Duration::from_millis(expire_in as u64),
    );
}

/// Posts `{source, version, type, organization_id, occurred_at, data}` to the
/// parent window, if the portal is framed.
pub fn post(session: &PortalSession, kind: &str, data: serde_json::Value) {
    let window = leptos::prelude::window();
    let Ok(Some(parent)) = window.parent() else { return };
    let own: &JsValue = window.as_ref();
    if AsRef::<JsValue>::as_ref(&parent) == own {
        return; // top-level: nobody to tell
    }
    let message = serde_json::json!({
        "source": "portico",
        "version": 1,
        "type": kind,
        "organization_id": session.organization_id,
        "occurred_at": iso(js_sys::Date::now()),
        "data": data,
    });
    let Ok(value) = js_sys::JSON::parse(&message.to_string()) else { return };
    for origin in &session.embed_origins {
        // Delivered only if the parent's origin equals `origin`.
        let _ = parent.post_message(&value, origin);
    }
}

fn iso(ms: f64) -> String {
    js_sys::Date::new(&JsValue::from_f64(ms)).to_iso_string().into()
}
