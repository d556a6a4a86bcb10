//! `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5) and keeping
//! extension schemas consistent with the attributes present.

use serde_json::{Map, Value};

/// Known schema extensions: their attributes live in an object under the URN.
/// Does the object's `schemas` array list `urn` (case-insensitive)?
pub fn lists_schema(obj: &serde_json::Map<String, serde_json::Value>, urn: &str) -> bool {
    obj.get("schemas")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|s| s.iter().any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(urn))))
}

pub const EXTENSIONS: &[&str] = &["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];

/// Always returned, whatever `attributes` says.
const ALWAYS: &[&str] = &["id", "schemas", "meta"];

/// One requested attribute: optional extension URN, name, sub-attribute.
#[derive(Debug)]
struct Wanted {
    uri: Option<String>,
    name: String,
    sub: Option<String>,
}

fn parse_list(raw: &str) -> Vec<Wanted> {
    raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(parse_one).collect()
}

fn parse_one(item: &str) -> Wanted {
    if let Some(ext) = EXTENSIONS.iter().find(|e| item.eq_ignore_ascii_case(e)) {
        return Wanted { uri: None, name: (*ext).to_owned(), sub: None };
    }
    let (uri, rest) = match EXTENSIONS.iter().find(|e| item.len() > e.len() && item[..e.len()].eq_ignore_ascii_case(e))
    {
        Some(ext) => (Some((*ext).to_owned()), item[ext.len()..].trim_start_matches(':')),
        None if item.to_ascii_lowercase().starts_with("urn:") => {
            // A core schema URN prefix: the attribute is top-level.
            (None, item.rsplit_once(':').map(|(_, a)| a).unwrap_or(item))
        }
        None => (None, item),
    };
    match rest.split_once('.') {
        Some((n, s)) => Wanted { uri, name: n.to_owned(), sub: Some(s.to_owned()) },
        None => Wanted { uri, name: rest.to_owned(), sub: None },
    }
}

fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Applies `attributes` (keep only these) and `excludedAttributes`.
pub fn project(resource: &mut Value, attributes: Option<&str>, excluded: Option<&str>) {
    let Some(obj) = resource.as_object_mut() else { return };
    if let Some(raw) = attributes.filter(|a| !a.trim().is_empty()) {
        let wanted = parse_list(raw);
        let mut kept = Map::new();
        for (k, v) in std::mem::take(obj) {
            if ALWAYS.iter().any(|a| k.eq_ignore_ascii_case(a)) {
                kept.insert(k, v);
                continue;
            }
            let is_ext = EXTENSIONS.iter().any(|e| k.eq_ignore_ascii_case(e));
            if is_ext {
                if wanted.iter().any(|w| w.uri.is_none() && w.name.eq_ignore_ascii_case(&k)) {
                    kept.insert(k, v);
                } else {
                    let inner: Vec<&Wanted> = wanted
                        .iter()
                        .filter(|w| w.uri.as_deref().is_some_and(|u| u.eq_ignore_ascii_case(&k)))
                        .collect();
                    if !inner.is_empty()
                        && let Value::Object(ext) = v
                    {
                        let ext: Map<String, Value> = ext
                            .into_iter()
                            .filter(|(ek, _)| inner.iter().any(|w| w.name.eq_ignore_ascii_case(ek)))
                            .collect();
                        kept.insert(k, Value::Object(ext));
                    }
                }
                continue;
            }
            let matching: Vec<&Wanted> =
                wanted.iter().filter(|w| w.uri.is_none() && w.name.eq_ignore_ascii_case(&k)).collect();
            if matching.is_empty() {
                continue;
            }
            if matching.iter().any(|w| w.sub.is_none()) {
                kept.insert(k, v);
            } else {
                let subs: Vec<&str> = matching.iter().filter_map(|w| w.sub.as_deref()).collect();
                kept.insert(k, keep_subs(v, &subs));
            }
        }
        *obj = kept;
    }
    if let Some(raw) = excluded {
        for w in parse_list(raw) {
            if ALWAYS.iter().any(|a| w.name.eq_ignore_ascii_case(a)) && w.uri.is_none() {
                continue;
            }
            let container = match &w.uri {
                None => Some(&mut *obj),
                Some(uri) => key_of(obj, uri).and_then(|k| obj.get_mut(&k)).and_then(Value::as_object_mut),
            };
            let Some(container) = container else { continue };
            let Some(key) = key_of(container, &w.name) else { continue };
            match &w.sub {
                None => {
                    container.remove(&key);
                }
                Some(sub) => drop_sub(container.get_mut(&key), sub),
            }
        }
    }
    sync_extension_schemas(resource);
}

fn keep_subs(v: Value, subs: &[&str]) -> Value {
    let keep = |o: Map<String, Value>| -> Value {
        Value::Object(o.into_iter().filter(|(k, _)| subs.iter().any(|s| s.eq_ignore_ascii_case(k))).collect())
    };
    match v {
        Value::Object(o) => keep(o),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|i| if let Value::Object(o) = i { keep(o) } else { i }).collect())
        }
        other => other,
    }
}

fn drop_sub(v: Option<&mut Value>, sub: &str) {
    match v {
        Some(Value::Object(o)) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
        Some(Value::Array(items)) => {
            for o in items.iter_mut().filter_map(Value::as_object_mut) {
                o.retain(|k, _| !k.eq_ignore_ascii_case(sub));
            }
        }
        _ => {}
    }
}

/// Lists each extension in `schemas` exactly when its object is present and
/// non-empty; drops empty extension objects.
pub fn sync_extension_schemas(resource: &mut Value) {
    let Some(obj) = resource.as_object_mut() else { return };
    for ext in EXTENSIONS {
        let key = key_of(obj, ext);
        let present =
            key.as_ref().and_then(|k| obj.get(k)).is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()));
        if !present && let Some(k) = key {
            obj.remove(&k);
        }
        if let Some(Value::Array(schemas)) = obj.get_mut("schemas") {
            let listed = schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext)));
            if present && !listed {
                schemas.push(Value::String((*ext).to_owned()));
            } else if !present && listed {
                schemas.retain(|s| !s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(ext)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", EXTENSIONS[0]],
            "id": "1", "userName": "u", "name": { "givenName": "A", "familyName": "B" },
            "emails": [{ "value": "a@b.c", "type": "work" }],
            "meta": { "resourceType": "User" },
            EXTENSIONS[0]: { "employeeNumber": "7", "department": "R&D" }
        })
    }

    #[test]
    fn excluded_and_selected_attributes() {
        let mut u = user();
        project(&mut u, None, Some("name,emails.type"));
        assert!(u.get("name").is_none());
        assert_eq!(u["emails"], json!([{ "value": "a@b.c" }]));
        let mut u = user();
        project(&mut u, Some("userName,name.givenName"), None);
        assert_eq!(u["name"], json!({ "givenName": "A" }));
        assert!(u.get("emails").is_none() && u.get(EXTENSIONS[0]).is_none());
        assert_eq!(u["id"], "1");
        assert_eq!(
            u["schemas"],
            json!(["urn:ietf:params:scim:schemas:core:2.0:User"]),
            "extension schema dropped with it"
        );
        let mut u = user();
        project(&mut u, Some(&format!("{}:department", EXTENSIONS[0])), None);
        assert_eq!(u[EXTENSIONS[0]], json!({ "department": "R&D" }));
        let mut u = user();
        project(&mut u, None, Some(&format!("{}:employeeNumber,id", EXTENSIONS[0])));
        assert_eq!(u[EXTENSIONS[0]], json!({ "department": "R&D" }));
        assert_eq!(u["id"], "1", "id is always returned");
    }
}
