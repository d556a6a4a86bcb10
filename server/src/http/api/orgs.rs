//! `/api/v1/organizations`: create, get, list (cursor pagination), update,
//! delete.

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use uuid::Uuid;

use super::{ApiJson, ApiQuery, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError};
use crate::orgs::{DomainName, ExternalId, NewOrganization, OrgBranding, OrgName, OrgQuery, OrgUpdate, Organization};

/// Most domains one organization may list.
const MAX_DOMAINS: usize = 100;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations", get(list).post(create))
        .route("/organizations/{id}", get(show).patch(update).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    branding: Option<BrandingBody>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BrandingBody {
    #[serde(default)]
    logo_url: Option<String>,
    #[serde(default)]
    accent_color: Option<String>,
}

fn parse_branding(body: Option<&BrandingBody>, errors: &mut Vec<FieldError>) -> OrgBranding {
    let Some(b) = body else { return OrgBranding::default() };
    OrgBranding::parse(b.logo_url.as_deref(), b.accent_color.as_deref()).unwrap_or_else(|errs| {
        errors.extend(errs.into_iter().map(|(field, message)| FieldError { field, message }));
        OrgBranding::default()
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; `null`: cleared; string: set.
    #[serde(default, deserialize_with = "present")]
    external_id: Option<Option<String>>,
    #[serde(default)]
    domains: Option<Vec<String>>,
    /// Replaces the organization's branding (send `{}` to clear it).
    #[serde(default)]
    branding: Option<BrandingBody>,
}

/// Distinguishes an explicit `null` (`Some(None)`) from an absent field
/// (`None`, via `#[serde(default)]`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<u32>,
    after: Option<String>,
    external_id: Option<String>,
    domain: Option<String>,
}

#[derive(Serialize)]
struct ListMetadata {
    after: Option<String>,
}

#[derive(Serialize)]
struct ListResponse {
    object: &'static str,
    data: Vec<Organization>,
    list_metadata: ListMetadata,
}

fn parse_domains(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<DomainName> {
    if raw.len() > MAX_DOMAINS {
        errors.push(FieldError { field: "domains".into(), message: format!("at most {MAX_DOMAINS} domains") });
        return Vec::new();
    }
    let mut out: Vec<DomainName> = Vec::with_capacity(raw.len());
    for (i, d) in raw.iter().enumerate() {
        match DomainName::parse(d) {
            Ok(d) if out.contains(&d) => errors.push(FieldError {
                field: format!("domains[{i}]"),
                message: format!("{} is listed twice", d.as_str()),
            }),
            Ok(d) => out.push(d),
            Err(message) => errors.push(FieldError { field: format!("domains[{i}]"), message }),
        }
    }
    out
}

fn field<T>(result: Result<T, String>, name: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    result.map_err(|message| errors.push(FieldError { field: name.into(), message })).ok()
}

fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(raw: &str) -> Result<Uuid, ApiError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|b| Uuid::from_slice(&b).ok())
        .ok_or_else(|| ApiError::BadRequest("invalid `after` cursor: pass list_metadata.after unchanged".into()))
}

#[tracing::instrument(skip_all)]
async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let mut errors = Vec::new();
    let name = field(OrgName::parse(&body.name), "name", &mut errors);
    let external_id = match body.external_id.as_deref() {
        Some(raw) => field(ExternalId::parse(raw), "external_id", &mut errors),
        None => None,
    };
    let domains = parse_domains(&body.domains, &mut errors);
    let branding = parse_branding(body.branding.as_ref(), &mut errors);
    let Some(name) = name.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let org = state.store.create_org(NewOrganization { name, external_id, domains, branding }).await?;
    tracing::info!(org_id = %org.id, "organization created");
    let location = format!("/api/v1/organizations/{}", org.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(org)))
}

#[tracing::instrument(skip_all, fields(org_id = %id))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Organization>, ApiError> {
    let uuid = parse_id(&id, "organization")?;
    state.store.get_org(uuid).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))
}

#[tracing::instrument(skip_all)]
async fn list(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<ListResponse>, ApiError> {
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let after = params.after.as_deref().map(decode_cursor).transpose()?;
    let domain = match params.domain.as_deref() {
        Some(d) => Some(DomainName::parse(d).map_err(|m| ApiError::invalid("domain", m))?),
        None => None,
    };
    let page = state.store.list_orgs(&OrgQuery { after, limit, external_id: params.external_id, domain }).await?;
    Ok(Json(ListResponse {
        object: "list",
        data: page.data,
        list_metadata: ListMetadata { after: page.next_after.map(encode_cursor) },
    }))
}

#[tracing::instrument(skip_all, fields(org_id = %id))]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Organization>, ApiError> {
    let uuid = parse_id(&id, "organization")?;
    let mut errors = Vec::new();
    let mut update = OrgUpdate::default();
    if let Some(raw) = &body.name {
        update.name = field(OrgName::parse(raw), "name", &mut errors);
    }
    match &body.external_id {
        None => {}
        Some(None) => update.external_id = Some(None),
        Some(Some(raw)) => update.external_id = field(ExternalId::parse(raw), "external_id", &mut errors).map(Some),
    }
    if let Some(raw) = &body.domains {
        update.domains = Some(parse_domains(raw, &mut errors));
    }
    if body.branding.is_some() {
        update.branding = Some(parse_branding(body.branding.as_ref(), &mut errors));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    state
        .store
        .update_org(uuid, update)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))
}

#[tracing::instrument(skip_all, fields(org_id = %id))]
async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "organization")?;
    if state.store.delete_org(uuid).await? {
        tracing::info!("organization deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("organization {id} not found")))
    }
}
