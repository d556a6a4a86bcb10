//! RFC 7644 §3.5.2 PATCH applied to a JSON resource, with the shapes real
//! IdPs send: case-insensitive op names (`Replace`), pathless values with
//! dotted (`name.givenName`) and extension-URN keys, filtered paths that
//! create the element when absent, `manager` given as a bare id. Operations
//! apply to a copy; the caller stores the result only if all succeed.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value, json};

use super::filter::val_filter_matches;
use super::{ScimErrorKind, ScimFault};

const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
use super::project::EXTENSIONS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Replace,
    Remove,
}

/// Why a PatchOp was refused (always a `400` at the HTTP edge).
pub type PatchError = ScimFault;

fn bad(detail: impl Into<String>) -> PatchError {
    ScimFault::new(ScimErrorKind::InvalidValue, detail)
}

fn bad_path(detail: impl Into<String>) -> PatchError {
    ScimFault::new(ScimErrorKind::InvalidPath, detail)
}

/// Applies the PatchOp `request` to `resource` (a SCIM resource object).
pub fn apply(resource: &mut Value, request: &Value) -> Result<(), PatchError> {
    if !request.as_object().is_some_and(|o| super::project::lists_schema(o, PATCH_SCHEMA)) {
        return Err(bad(format!("`schemas` must be [\"{PATCH_SCHEMA}\"]")));
    }
    let ops = request
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("Operations")))
        .and_then(|(_, v)| v.as_array())
        .filter(|ops| !ops.is_empty())
        .ok_or_else(|| bad("`Operations` must be a non-empty array"))?;
    for (i, op) in ops.iter().enumerate() {
        apply_one(resource, op).map_err(|mut e| {
            e.detail = format!("operation {}: {}", i + 1, e.detail);
            e
        })?;
    }
    Ok(())
}

fn apply_one(resource: &mut Value, op: &Value) -> Result<(), PatchError> {
    let field =
        |name: &str| op.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name))).map(|(_, v)| v);
    let kind = match field("op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
        Some("add") => Op::Add,
        Some("replace") => Op::Replace,
        Some("remove") => Op::Remove,
        other => return Err(bad(format!("`op` must be add, replace or remove, got {other:?}"))),
    };
    let value = field("value").cloned();
    let path = field("path").and_then(Value::as_str).map(str::trim).filter(|p| !p.is_empty());
    match (path, kind) {
        (None, Op::Remove) => Err(ScimFault::new(ScimErrorKind::NoTarget, "remove needs a path")),
        (None, _) => {
            let Some(Value::Object(values)) = value else {
                return Err(bad("without a path, `value` must be an object of attributes"));
            };
            for (key, v) in values {
                let path = pathless_key(&key)?;
                set_attr(resource, &path, kind, v)?;
            }
            Ok(())
        }
        (Some(raw), _) if EXTENSIONS.iter().any(|e| raw.eq_ignore_ascii_case(e)) => {
            let path = AttrPath { uri: None, name: raw.to_owned(), sub_attr: None };
            match kind {
                Op::Remove => {
                    remove_attr(resource, &path, None);
                    Ok(())
                }
                _ => set_attr(resource, &path, kind, value.ok_or_else(|| bad("add and replace need a `value`"))?),
            }
        }
        (Some(raw), _) => {
            let parsed: PatchPath = raw.parse().map_err(|e| bad_path(format!("invalid path {raw:?}: {e}")))?;
            if kind != Op::Remove && value.is_none() {
                return Err(bad("add and replace need a `value`"));
            }
            match parsed {
                PatchPath::Attr(path) => match kind {
                    Op::Remove => {
                        remove_attr(resource, &path, value.as_ref());
                        Ok(())
                    }
                    _ => set_attr(resource, &path, kind, value.unwrap_or(Value::Null)),
                },
                PatchPath::Value(vp) => {
                    let container = container_mut(resource, vp.attr.uri.as_deref(), kind != Op::Remove)
                        .ok_or_else(|| bad_path(format!("no attribute at {raw:?}")))?;
                    let items = entry_ci(container, &vp.attr.name, kind != Op::Remove);
                    let Some(items) = items else { return Ok(()) };
                    if !items.is_array() {
                        *items = Value::Array(Vec::new());
                    }
                    let list = items.as_array_mut().expect("made an array above");
                    let mut matched = false;
                    if kind == Op::Remove {
                        match &vp.sub_attr {
                            None => list.retain(|e| !val_filter_matches(&vp.filter, e)),
                            Some(sub) => {
                                for e in list.iter_mut().filter(|e| val_filter_matches(&vp.filter, e)) {
                                    if let Some(o) = e.as_object_mut() {
                                        o.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                                    }
                                }
                            }
                        }
                        return Ok(());
                    }
                    let v = value.unwrap_or(Value::Null);
                    for e in list.iter_mut().filter(|e| val_filter_matches(&vp.filter, e)) {
                        matched = true;
                        write_into_element(e, vp.sub_attr.as_deref(), v.clone());
                    }
                    if !matched {
                        // Filtered path on an absent element: create it from
                        // the filter's equalities (Entra does this).
                        let mut element = Value::Object(Map::new());
                        seed_from_filter(&mut element, &vp.filter);
                        write_into_element(&mut element, vp.sub_attr.as_deref(), v);
                        list.push(element);
                    }
                    Ok(())
                }
            }
        }
    }
}

/// A pathless value key: `userName`, `name.givenName`, an extension URN
/// (whole object) or `<urn>:<attr>` (split at the last `:`).
fn pathless_key(key: &str) -> Result<AttrPath, PatchError> {
    if let Some(ext) = EXTENSIONS.iter().find(|e| key.eq_ignore_ascii_case(e)) {
        return Ok(AttrPath { uri: None, name: (*ext).to_owned(), sub_attr: None });
    }
    if key.to_ascii_lowercase().starts_with("urn:") {
        let (uri, attr) = key.rsplit_once(':').ok_or_else(|| bad_path(format!("bad attribute {key:?}")))?;
        let (name, sub) = match attr.split_once('.') {
            Some((n, s)) => (n.to_owned(), Some(s.to_owned())),
            None => (attr.to_owned(), None),
        };
        return Ok(AttrPath { uri: Some(uri.to_owned()), name, sub_attr: sub });
    }
    match key.split_once('.') {
        Some((n, s)) => Ok(AttrPath { uri: None, name: n.to_owned(), sub_attr: Some(s.to_owned()) }),
        None => Ok(AttrPath { uri: None, name: key.to_owned(), sub_attr: None }),
    }
}

/// The object holding attributes of `uri` (the resource itself when none).
fn container_mut<'a>(resource: &'a mut Value, uri: Option<&str>, create: bool) -> Option<&'a mut Map<String, Value>> {
    let root = resource.as_object_mut()?;
    match uri {
        None => Some(root),
        Some(uri) => {
            if create {
                add_schema(root, uri);
            }
            let ext = entry_in(root, uri, create)?;
            if !ext.is_object() {
                if !create {
                    return None;
                }
                *ext = Value::Object(Map::new());
            }
            ext.as_object_mut()
        }
    }
}

fn add_schema(root: &mut Map<String, Value>, uri: &str) {
    if let Some(Value::Array(schemas)) = root.get_mut("schemas")
        && !schemas.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(uri)))
    {
        schemas.push(json!(uri));
    }
}

/// The entry for `key` (case-insensitive), created as null when asked.
fn entry_ci<'a>(map: &'a mut Map<String, Value>, key: &str, create: bool) -> Option<&'a mut Value> {
    entry_in(map, key, create)
}

fn entry_in<'a>(map: &'a mut Map<String, Value>, key: &str, create: bool) -> Option<&'a mut Value> {
    let existing = map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
    match existing {
        Some(k) => map.get_mut(&k),
        None if create => Some(map.entry(key.to_owned()).or_insert(Value::Null)),
        None => None,
    }
}

fn set_attr(resource: &mut Value, path: &AttrPath, kind: Op, value: Value) -> Result<(), PatchError> {
    // A whole extension object given pathless: merge its attributes.
    if path.uri.is_none() && EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(&path.name)) {
        let Value::Object(attrs) = value else { return Err(bad(format!("{} must be an object", path.name))) };
        for (k, v) in attrs {
            let sub = AttrPath { uri: Some(path.name.clone()), name: k, sub_attr: None };
            set_attr(resource, &sub, kind, v)?;
        }
        return Ok(());
    }
    let value = normalize(path, value);
    let container =
        container_mut(resource, path.uri.as_deref(), true).ok_or_else(|| bad("the resource is not an object"))?;
    let slot = entry_ci(container, &path.name, true).expect("created");
    match &path.sub_attr {
        Some(sub) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let inner = slot.as_object_mut().expect("made an object");
            *entry_ci(inner, sub, true).expect("created") = value;
        }
        None => match (kind, &mut *slot, value) {
            // add to a multi-valued attribute appends.
            (Op::Add, Value::Array(existing), Value::Array(new)) => {
                for v in new {
                    if !existing.contains(&v) {
                        existing.push(v);
                    }
                }
            }
            (Op::Add, Value::Object(existing), Value::Object(new)) => existing.extend(new),
            (_, slot, value) => *slot = value,
        },
    }
    Ok(())
}

/// `manager` is a complex attribute; IdPs send the bare id.
fn normalize(path: &AttrPath, value: Value) -> Value {
    match value {
        Value::String(id) if path.name.eq_ignore_ascii_case("manager") && path.sub_attr.is_none() => {
            json!({ "value": id })
        }
        other => other,
    }
}

fn remove_attr(resource: &mut Value, path: &AttrPath, value: Option<&Value>) {
    let Some(container) = container_mut(resource, path.uri.as_deref(), false) else { return };
    let key = container.keys().find(|k| k.eq_ignore_ascii_case(&path.name)).cloned();
    let Some(key) = key else { return };
    match (&path.sub_attr, value) {
        (Some(sub), _) => match container.get_mut(&key) {
            Some(Value::Object(o)) => o.retain(|k, _| !k.eq_ignore_ascii_case(sub)),
            Some(Value::Array(items)) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    item.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                }
            }
            _ => {}
        },
        // `members` remove with a value array removes only those (Entra).
        (None, Some(Value::Array(listed))) => {
            if let Some(Value::Array(items)) = container.get_mut(&key) {
                let ids: Vec<&Value> = listed.iter().filter_map(|v| v.get("value")).collect();
                items.retain(|item| !item.get("value").is_some_and(|v| ids.contains(&v)));
            }
        }
        (None, _) => {
            container.remove(&key);
        }
    }
}

fn write_into_element(element: &mut Value, sub: Option<&str>, value: Value) {
    match (sub, element.as_object_mut()) {
        (Some(sub), Some(obj)) => *entry_ci(obj, sub, true).expect("created") = value,
        (None, Some(obj)) => match value {
            Value::Object(fields) => obj.extend(fields),
            other => *element = other,
        },
        (_, None) => *element = value,
    }
}

/// Copies `attr eq "v"` conditions of a value filter into a new element.
fn seed_from_filter(element: &mut Value, filter: &ValFilter) {
    match filter {
        ValFilter::Attr(AttrExp::Comparison(path, CompareOp::Eq, v)) => {
            let v = match v {
                CompValue::Str(s) => json!(s),
                CompValue::True => json!(true),
                CompValue::False => json!(false),
                CompValue::Number(n) => json!(n),
                CompValue::Null => Value::Null,
            };
            if let Some(obj) = element.as_object_mut() {
                obj.insert(path.name.clone(), v);
            }
        }
        ValFilter::And(items) => items.iter().for_each(|f| seed_from_filter(element, f)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen", "active": true,
            "name": { "givenName": "Barbara", "familyName": "Jensen" },
            "emails": [{ "value": "b@example.com", "type": "work", "primary": true }]
        })
    }

    fn patch(ops: Value) -> Result<Value, PatchError> {
        let mut u = user();
        apply(&mut u, &json!({ "schemas": [PATCH_SCHEMA], "Operations": ops }))?;
        Ok(u)
    }

    #[test]
    fn okta_deactivation_and_pathless_replace() {
        let u = patch(json!([{ "op": "replace", "value": { "active": false } }])).unwrap();
        assert_eq!(u["active"], false);
        let u = patch(json!([{ "op": "Replace", "value": { "name.givenName": "Babs", "displayName": "Babs J" } }]))
            .unwrap();
        assert_eq!(u["name"]["givenName"], "Babs");
        assert_eq!(u["name"]["familyName"], "Jensen", "siblings kept");
        assert_eq!(u["displayName"], "Babs J");
    }

    #[test]
    fn entra_shapes() {
        let u = patch(json!([
            { "op": "Replace", "path": "active", "value": "False" },
            { "op": "Add", "path": "emails[type eq \"home\"].value", "value": "home@example.com" },
            { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "new@example.com" },
            { "op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "m-42" },
            { "op": "Add", "value": { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "R&D" } }
        ]))
        .unwrap();
        assert_eq!(u["active"], "False", "validation turns it into a boolean later");
        let emails = u["emails"].as_array().unwrap();
        assert_eq!(emails.len(), 2);
        assert_eq!(emails[0]["value"], "new@example.com");
        assert_eq!(emails[1], json!({ "type": "home", "value": "home@example.com" }));
        let ent = &u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
        assert_eq!(ent["manager"], json!({ "value": "m-42" }));
        assert_eq!(ent["department"], "R&D");
        assert!(u["schemas"].as_array().unwrap().iter().any(|s| s == EXTENSIONS[0]));
    }

    #[test]
    fn removes_and_errors() {
        let u = patch(json!([{ "op": "remove", "path": "name.givenName" }, { "op": "remove", "path": "emails[type eq \"work\"]" }])).unwrap();
        assert!(u["name"].get("givenName").is_none());
        assert_eq!(u["emails"], json!([]));
        assert!(patch(json!([{ "op": "remove" }])).is_err_and(|e| e.kind == ScimErrorKind::NoTarget));
        assert!(patch(json!([{ "op": "explode", "path": "userName", "value": 1 }])).is_err());
        assert!(
            patch(json!([{ "op": "add", "path": "emails[type eq", "value": 1 }]))
                .is_err_and(|e| e.kind == ScimErrorKind::InvalidPath)
        );
        assert!(patch(json!([])).is_err());
        let mut u = user();
        assert!(
            apply(&mut u, &json!({ "Operations": [{ "op": "add", "path": "title", "value": "x" }] })).is_err(),
            "schemas required"
        );
    }

    #[test]
    fn members_remove_with_a_value_list_removes_only_those() {
        let mut g = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "members": [{ "value": "a" }, { "value": "b" }, { "value": "c" }] });
        apply(&mut g, &json!({ "schemas": [PATCH_SCHEMA], "Operations": [{ "op": "Remove", "path": "members", "value": [{ "value": "a" }, { "value": "c" }] }] })).unwrap();
        assert_eq!(g["members"], json!([{ "value": "b" }]));
    }
}
