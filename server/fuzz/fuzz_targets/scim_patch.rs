//! Any PATCH path, and any PatchOp body: parsing and applying must not
//! panic, whatever the IdP sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_server::scim::patch::apply;
use scim_v2::filter::PatchPath;
use serde_json::{Value, json};

fn user() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "bjensen", "active": true,
        "name": { "givenName": "B" },
        "emails": [{ "value": "b@example.com", "type": "work" }, 3],
        "members": [{ "value": "a" }, "b"]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = text.parse::<PatchPath>();
    for op in ["add", "replace", "remove"] {
        for value in [json!("v"), json!({ "value": "x", "type": "home" }), json!([{ "value": "a" }]), Value::Null] {
            let request = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": op, "path": text, "value": value }]
            });
            let _ = apply(&mut user(), &request);
        }
    }
    if let Ok(request) = serde_json::from_slice::<Value>(data) {
        let _ = apply(&mut user(), &request);
    }
});
