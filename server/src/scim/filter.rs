//! Evaluating RFC 7644 §3.4.2.2 filters (parsed by the `scim_v2` crate)
//! against SCIM resources as JSON, and spotting the indexed lookups IdPs
//! send most (`userName eq`, `externalId eq`, `emails[value eq]`).

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, Filter, ValFilter};
use serde_json::Value;

/// Attributes compared case-sensitively (RFC 7643 `caseExact: true`);
/// everything else in the core and enterprise schemas is case-insensitive.
const CASE_EXACT: &[&str] = &["id", "externalid", "password"];

/// Does `resource` match `filter`?
pub fn matches(filter: &Filter, resource: &Value) -> bool {
    match filter {
        Filter::Attr(exp) => attr_exp(exp, resource),
        Filter::ValuePath(vp) => values_at(resource, &vp.attr).iter().any(|element| val_filter(&vp.filter, element)),
        Filter::Not(inner) => !matches(inner, resource),
        Filter::And(items) => items.iter().all(|f| matches(f, resource)),
        Filter::Or(items) => items.iter().any(|f| matches(f, resource)),
    }
}

/// Does one element of a multi-valued attribute match a value filter?
pub fn val_filter_matches(filter: &ValFilter, element: &Value) -> bool {
    val_filter(filter, element)
}

fn val_filter(filter: &ValFilter, element: &Value) -> bool {
    match filter {
        ValFilter::Attr(exp) => attr_exp(exp, element),
        ValFilter::Not(inner) => !val_filter(inner, element),
        ValFilter::And(items) => items.iter().all(|f| val_filter(f, element)),
        ValFilter::Or(items) => items.iter().any(|f| val_filter(f, element)),
    }
}

fn attr_exp(exp: &AttrExp, resource: &Value) -> bool {
    match exp {
        AttrExp::Present(path) => values_at(resource, path).iter().any(|v| match v {
            Value::Null => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
            _ => true,
        }),
        AttrExp::Comparison(path, op, value) => {
            let exact = CASE_EXACT.contains(&path.name.to_ascii_lowercase().as_str()) && path.sub_attr.is_none();
            let found = values_at(resource, path);
            if matches!(op, CompareOp::Ne) {
                return !found.iter().any(|v| compare(v, &CompareOp::Eq, value, exact));
            }
            found.iter().any(|v| compare(v, op, value, exact))
        }
    }
}

/// Values at `path` (URN prefix, attribute, sub-attribute), case-insensitive
/// names. Multi-valued attributes yield each element; a sub-attribute of a
/// multi-valued attribute yields that sub-attribute of every element.
fn values_at<'a>(resource: &'a Value, path: &AttrPath) -> Vec<&'a Value> {
    let container = match &path.uri {
        Some(uri) => match get_ci(resource, uri) {
            Some(ext) => ext,
            None => return Vec::new(),
        },
        None => resource,
    };
    let Some(value) = get_ci(container, &path.name) else { return Vec::new() };
    let elements: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    match &path.sub_attr {
        None => elements,
        Some(sub) => elements.into_iter().filter_map(|e| get_ci(e, sub)).collect(),
    }
}

fn get_ci<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v)
}

fn compare(actual: &Value, op: &CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => {
            if !case_exact {
                let (a, e) = (a.to_lowercase(), e.to_lowercase());
                return string_op(&a, op, &e);
            }
            return string_op(a, op, e);
        }
        (Value::Bool(a), CompValue::True) => Some(a.cmp(&true)),
        (Value::Bool(a), CompValue::False) => Some(a.cmp(&false)),
        // IdPs send booleans as strings ("False"); compare them as booleans.
        (Value::String(a), CompValue::True | CompValue::False) => {
            let a = a.eq_ignore_ascii_case("true");
            Some(a.cmp(&matches!(expected, CompValue::True)))
        }
        (Value::Number(a), CompValue::Number(e)) => a.as_f64().zip(e.as_f64()).and_then(|(a, e)| a.partial_cmp(&e)),
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (ordering, op) {
        (Some(o), CompareOp::Eq) => o == Ordering::Equal,
        (Some(o), CompareOp::Gt) => o == Ordering::Greater,
        (Some(o), CompareOp::Ge) => o != Ordering::Less,
        (Some(o), CompareOp::Lt) => o == Ordering::Less,
        (Some(o), CompareOp::Le) => o != Ordering::Greater,
        _ => false,
    }
}

fn string_op(a: &str, op: &CompareOp, e: &str) -> bool {
    match op {
        CompareOp::Eq => a == e,
        CompareOp::Ne => a != e,
        CompareOp::Co => a.contains(e),
        CompareOp::Sw => a.starts_with(e),
        CompareOp::Ew => a.ends_with(e),
        CompareOp::Gt => a > e,
        CompareOp::Ge => a >= e,
        CompareOp::Lt => a < e,
        CompareOp::Le => a <= e,
    }
}

/// An equality lookup the store answers from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indexed {
    UserName(String),
    ExternalId(String),
    Email(String),
    /// A group's displayName (case-insensitive, like userName).
    DisplayName(String),
}

/// The indexed user lookup implied by `filter`, if it is one of the hot
/// shapes (alone or as one operand of a top-level `and`, the rest then being
/// checked by [`matches`]).
pub fn indexed(filter: &Filter) -> Option<Indexed> {
    lookup(filter, &|l| !matches!(l, Indexed::DisplayName(_)))
}

/// The indexed group lookup implied by `filter` (`displayName eq`, what Okta
/// and Entra send before creating a group, or `externalId eq`).
pub fn indexed_group(filter: &Filter) -> Option<Indexed> {
    lookup(filter, &|l| matches!(l, Indexed::DisplayName(_) | Indexed::ExternalId(_)))
}

fn lookup(filter: &Filter, usable: &dyn Fn(&Indexed) -> bool) -> Option<Indexed> {
    let found = match filter {
        Filter::Attr(AttrExp::Comparison(path, CompareOp::Eq, CompValue::Str(v))) if path.uri.is_none() => {
            let name = path.name.to_ascii_lowercase();
            match (name.as_str(), path.sub_attr.as_deref().map(str::to_ascii_lowercase).as_deref()) {
                ("username", None) => Some(Indexed::UserName(v.to_lowercase())),
                ("externalid", None) => Some(Indexed::ExternalId(v.clone())),
                ("emails", Some("value")) => Some(Indexed::Email(v.to_lowercase())),
                ("displayname", None) => Some(Indexed::DisplayName(v.to_lowercase())),
                _ => None,
            }
        }
        Filter::ValuePath(vp) if vp.attr.name.eq_ignore_ascii_case("emails") && vp.attr.uri.is_none() => {
            match vp.filter.as_ref() {
                ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(v)))
                    if p.name.eq_ignore_ascii_case("value") =>
                {
                    Some(Indexed::Email(v.to_lowercase()))
                }
                _ => None,
            }
        }
        Filter::And(items) => return items.iter().find_map(|f| lookup(f, usable)),
        _ => None,
    };
    found.filter(usable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "2819c223", "externalId": "00u1", "userName": "Bjensen@Example.com", "active": true,
            "name": { "givenName": "Barbara", "familyName": "Jensen" },
            "emails": [
                { "value": "bjensen@example.com", "type": "work", "primary": true },
                { "value": "babs@jensen.org", "type": "home" }
            ],
            "meta": { "lastModified": "2026-11-20T10:00:00Z" },
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "employeeNumber": "701984", "manager": { "value": "26118915" } }
        })
    }

    fn check(filter: &str) -> bool {
        let f: Filter = filter.parse().unwrap_or_else(|e| panic!("{filter}: {e}"));
        matches(&f, &user())
    }

    #[test]
    fn the_rfc_operators_and_logic() {
        assert!(check(r#"userName eq "bjensen@example.com""#), "userName is case-insensitive");
        assert!(!check(r#"externalId eq "00U1""#), "externalId is case-exact");
        assert!(check(r#"externalId eq "00u1""#));
        assert!(check(r#"name.familyName co "ens""#));
        assert!(check(r#"userName sw "bjen""#) && check(r#"userName ew "EXAMPLE.COM""#));
        assert!(!check("title pr") && check("name pr") && check("emails pr"));
        assert!(check(r#"meta.lastModified gt "2026-01-01T00:00:00Z""#));
        assert!(!check(r#"meta.lastModified lt "2026-01-01T00:00:00Z""#));
        assert!(check(r#"userName ne "other""#) && !check(r#"userName ne "BJENSEN@example.com""#));
        assert!(check(r#"active eq true"#) && !check(r#"active eq false"#));
        assert!(check(r#"not (active eq false) and (name.givenName eq "barbara" or userName eq "x")"#));
        assert!(check(r#"emails[type eq "work" and value co "example.com"]"#));
        assert!(!check(r#"emails[type eq "home" and value co "example.com"]"#));
        assert!(check(r#"emails.value eq "babs@jensen.org""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#));
        assert!(check(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915""#));
        assert!(check(r#"USERNAME EQ "bjensen@example.com""#), "operators and names are case-insensitive");
    }

    #[test]
    fn hot_lookups_are_recognised() {
        let f = |s: &str| -> Filter { s.parse().unwrap() };
        assert_eq!(indexed(&f(r#"userName eq "Bob""#)), Some(Indexed::UserName("bob".into())));
        assert_eq!(indexed(&f(r#"externalId eq "A1""#)), Some(Indexed::ExternalId("A1".into())));
        assert_eq!(indexed(&f(r#"emails[value eq "A@b.io"]"#)), Some(Indexed::Email("a@b.io".into())));
        assert_eq!(indexed(&f(r#"emails.value eq "A@b.io""#)), Some(Indexed::Email("a@b.io".into())));
        assert_eq!(indexed(&f(r#"active eq true and userName eq "x""#)), Some(Indexed::UserName("x".into())));
        // A user has no displayName column; a group has no userName.
        assert_eq!(indexed(&f(r#"displayName eq "Eng" and userName eq "x""#)), Some(Indexed::UserName("x".into())));
        assert_eq!(indexed(&f(r#"displayName eq "Eng""#)), None);
        assert_eq!(indexed_group(&f(r#"displayName eq "Eng""#)), Some(Indexed::DisplayName("eng".into())));
        assert_eq!(
            indexed_group(&f(r#"userName eq "x" and externalId eq "G1""#)),
            Some(Indexed::ExternalId("G1".into()))
        );
        assert_eq!(indexed_group(&f(r#"displayName co "Eng""#)), None);
        assert_eq!(indexed(&f(r#"userName co "x""#)), None);
        assert_eq!(indexed(&f(r#"userName eq "x" or userName eq "y""#)), None);
    }
}
