//! Any filter string: parsing must not panic, and a parsed filter must
//! evaluate (and be classified for indexing) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portico_server::scim::filter::{indexed, indexed_group, matches};
use scim_v2::filter::Filter;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(filter) = text.parse::<Filter>() {
        let user = serde_json::json!({
            "id": "1", "userName": "bjensen", "active": true, "externalId": "x",
            "name": { "givenName": "B", "familyName": "J" },
            "emails": [{ "value": "b@example.com", "type": "work", "primary": true }, "odd"],
            "meta": { "lastModified": "2026-01-01T00:00:00Z" },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "employeeNumber": 7, "manager": { "value": "m" } }
        });
        let _ = matches(&filter, &user);
        let _ = indexed(&filter);
        let _ = indexed_group(&filter);
    }
});
