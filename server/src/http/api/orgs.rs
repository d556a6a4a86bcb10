//! `/api/v1/organizations`: create, get, list (cursor pagination), update,
//! delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiQuery, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::orgs::{DomainName, ExternalId, NewOrganization, OrgBranding, OrgName, OrgQuery, OrgUpdate, Organization};

/// Most domains one organization may list.
const MAX_DOMAINS: usize = 100;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(show, update, remove))
}

/// A new organization.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateOrganization)]
struct CreateBody {
    /// Display name, 1–200 characters after trimming.
    #[schema(min_length = 1, max_length = 200, example = "Acme Corp")]
    name: String,
    /// The vendor's own id for the organization (e.g. its tenant id), unique;
    /// 1–255 bytes, no surrounding whitespace.
    #[serde(default)]
    #[schema(max_length = 255)]
    external_id: Option<String>,
    /// Domains to verify (each starts `pending`).
    #[serde(default)]
    #[schema(max_items = 100, example = json!(["acme.com"]))]
    domains: Vec<String>,
    #[serde(default)]
    branding: Option<BrandingBody>,
}

/// Portal branding overrides; unset fields fall back to the vendor's
/// settings.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BrandingRequest)]
struct BrandingBody {
    /// An `https://` URL of at most 2048 characters.
    #[serde(default)]
    #[schema(format = "uri", max_length = 2048)]
    logo_url: Option<String>,
    /// `#rrggbb`.
    #[serde(default)]
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1a2b3c")]
    accent_color: Option<String>,
}

fn parse_branding(body: Option<&BrandingBody>, errors: &mut Vec<FieldError>) -> OrgBranding {
    let Some(b) = body else { return OrgBranding::default() };
    OrgBranding::parse(b.logo_url.as_deref(), b.accent_color.as_deref()).unwrap_or_else(|errs| {
        errors.extend(errs.into_iter().map(|(field, message)| FieldError { field, message }));
        OrgBranding::default()
    })
}

/// Changes to an organization; absent fields stay unchanged.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = UpdateOrganization)]
struct UpdateBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// Absent: unchanged; `null`: cleared; string: set.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    external_id: Option<Option<String>>,
    /// Replaces the whole set; kept domains keep their state.
    #[serde(default)]
    #[schema(max_items = 100)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Page size.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<u32>,
    /// Opaque cursor from `list_metadata.after` of the previous page.
    after: Option<String>,
    /// Only the organization with this `external_id`.
    external_id: Option<String>,
    /// Only organizations that list this domain (in any state).
    #[param(example = "acme.com")]
    domain: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationListMetadata)]
struct ListMetadata {
    /// Cursor for the next page; `null` on the last page.
    after: Option<String>,
}

/// A page of organizations, oldest first.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = OrganizationList)]
struct ListResponse {
    #[schema(schema_with = crate::fields::schema::object::list)]
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

/// Create an organization.
#[utoipa::path(
    post,
    path = "/organizations",
    operation_id = "createOrganization",
    tag = "organizations",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = Organization,
            headers(("Location" = String, description = "URL of the new organization"))),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`external_id` already used, or a domain verified by another organization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Get an organization.
#[utoipa::path(
    get,
    path = "/organizations/{id}",
    operation_id = "getOrganization",
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "The organization", body = Organization),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
#[tracing::instrument(skip_all, fields(org_id = %id))]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Organization>, ApiError> {
    let uuid = parse_id(&id, "organization")?;
    state.store.get_org(uuid).await?.map(Json).ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))
}

/// List organizations, oldest first.
///
/// Cursor-paginated: pass `list_metadata.after` of one page as `after` to get the next.
#[utoipa::path(
    get,
    path = "/organizations",
    operation_id = "listOrganizations",
    tag = "organizations",
    params(ListParams),
    responses(
        (status = 200, description = "A page of organizations", body = ListResponse),
        (status = 400, description = "Bad cursor or query", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid filter value", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Update an organization; absent fields stay unchanged.
#[utoipa::path(
    patch,
    path = "/organizations/{id}",
    operation_id = "updateOrganization",
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The updated organization", body = Organization),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`external_id` already used, or a domain verified by another organization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Delete an organization and everything it owns.
#[utoipa::path(
    delete,
    path = "/organizations/{id}",
    operation_id = "deleteOrganization",
    tag = "organizations",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
