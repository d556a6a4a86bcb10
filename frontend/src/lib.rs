//! Browser entry point. Trunk builds this crate to wasm; the server-rendered
//! HTML calls [`hydrate`] to attach Leptos to the existing DOM.

/// Attaches the Leptos app to the server-rendered document.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
