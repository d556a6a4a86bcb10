//! `/api/v1/organizations/{id}/domains`: add, list, show, delete, verify now;
//! `/api/v1/domains/lookup`: which organization owns a verified domain.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, ApiQuery, parse_id};
use crate::domains::Domain;
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::orgs::DomainName;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, add))
        .routes(routes!(show, remove))
        .routes(routes!(verify))
        .routes(routes!(lookup))
}

async fn require_org(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_id(raw, "organization")?;
    state.store.get_org(id).await?.ok_or_else(|| ApiError::NotFound(format!("organization {raw} not found")))?;
    Ok(id)
}

fn domain_not_found(domain: &str) -> ApiError {
    ApiError::NotFound(format!("domain {domain:?} is not a domain of this organization"))
}

/// An organization's domains.
#[derive(Serialize, utoipa::ToSchema)]
struct DomainList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<Domain>,
}

/// The organization's domains with verification details.
#[utoipa::path(
    get,
    path = "/organizations/{id}/domains",
    operation_id = "listDomains",
    tag = "domains",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Domains", body = DomainList),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DomainList>, ApiError> {
    let id = require_org(&state, &id).await?;
    let data = state.store.list_domains(&state.domains.policy, id).await?;
    Ok(Json(DomainList { object: "list", data }))
}

/// A domain to add.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AddDomain)]
struct AddBody {
    #[schema(example = "acme.com")]
    domain: String,
}

/// Add a domain to verify (`pending`).
///
/// The response's `verification` is the TXT record to publish; Portico checks
/// it in the background with backoff until it verifies or expires.
#[utoipa::path(
    post,
    path = "/organizations/{id}/domains",
    operation_id = "addDomain",
    tag = "domains",
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = AddBody,
    responses(
        (status = 201, description = "Added", body = Domain),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already a domain of this organization, or verified by another", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a domain name", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn add(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AddBody>,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    let org = parse_id(&id, "organization")?;
    let domain = DomainName::parse(&body.domain).map_err(|m| ApiError::invalid("domain", m))?;
    let added = state
        .store
        .add_domain(&state.domains.policy, org, &domain)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    tracing::info!(org_id = %org, domain = %added.domain, "domain added");
    Ok((StatusCode::CREATED, Json(added)))
}

/// One domain.
#[utoipa::path(
    get,
    path = "/organizations/{id}/domains/{domain}",
    operation_id = "getDomain",
    tag = "domains",
    params(
        ("id" = Uuid, Path, description = "Organization id"),
        ("domain" = String, Path, description = "The domain name", example = "acme.com"),
    ),
    responses(
        (status = 200, description = "The domain", body = Domain),
        (status = 404, description = "Not a domain of this organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn show(
    State(state): State<AppState>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<Json<Domain>, ApiError> {
    let org = parse_id(&id, "organization")?;
    let name = domain.to_ascii_lowercase();
    state.store.get_domain(&state.domains.policy, org, &name).await?.map(Json).ok_or_else(|| domain_not_found(&domain))
}

/// Remove a domain.
#[utoipa::path(
    delete,
    path = "/organizations/{id}/domains/{domain}",
    operation_id = "removeDomain",
    tag = "domains",
    params(
        ("id" = Uuid, Path, description = "Organization id"),
        ("domain" = String, Path, description = "The domain name", example = "acme.com"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "Not a domain of this organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn remove(
    State(state): State<AppState>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let org = parse_id(&id, "organization")?;
    if state.store.remove_domain(org, &domain.to_ascii_lowercase()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(domain_not_found(&domain))
    }
}

/// Check the TXT record now.
///
/// Answers with the domain's state after the check.
#[utoipa::path(
    post,
    path = "/organizations/{id}/domains/{domain}/verify",
    operation_id = "verifyDomain",
    tag = "domains",
    params(
        ("id" = Uuid, Path, description = "Organization id"),
        ("domain" = String, Path, description = "The domain name", example = "acme.com"),
    ),
    responses(
        (status = 200, description = "The domain after the check", body = Domain),
        (status = 404, description = "Not a domain of this organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn verify(
    State(state): State<AppState>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<Json<Domain>, ApiError> {
    let org = parse_id(&id, "organization")?;
    let policy = &state.domains.policy;
    let current = state
        .store
        .get_domain(policy, org, &domain.to_ascii_lowercase())
        .await?
        .ok_or_else(|| domain_not_found(&domain))?;
    state.domains.check(&state.store, current.id, true).await?.map(Json).ok_or_else(|| domain_not_found(&domain))
}

/// Exactly one of `domain` or `email`.
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct LookupParams {
    /// A domain name.
    #[serde(default)]
    #[param(example = "acme.com")]
    domain: Option<String>,
    /// An email address; its domain is looked up.
    #[serde(default)]
    #[param(format = Email, example = "jane@acme.com")]
    email: Option<String>,
}

/// The organization that verified a domain.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DomainLookup)]
struct LookupResult {
    #[schema(schema_with = crate::fields::schema::object::domain_lookup)]
    object: &'static str,
    #[schema(example = "acme.com")]
    domain: String,
    organization_id: Uuid,
}

/// The organization that verified a domain (or an email's domain).
///
/// What domain-based SSO routing uses. Pending and failed domains never match.
#[utoipa::path(
    get,
    path = "/domains/lookup",
    operation_id = "lookupDomain",
    tag = "domains",
    params(LookupParams),
    responses(
        (status = 200, description = "Owner", body = LookupResult),
        (status = 400, description = "Bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No organization has verified it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Give exactly one valid `domain` or `email`", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn lookup(
    State(state): State<AppState>,
    ApiQuery(p): ApiQuery<LookupParams>,
) -> Result<Json<LookupResult>, ApiError> {
    let raw = match (p.domain.as_deref(), p.email.as_deref()) {
        (Some(d), None) => d.to_owned(),
        (None, Some(e)) => match e.rsplit_once('@') {
            Some((local, d)) if !local.is_empty() => d.to_owned(),
            _ => return Err(ApiError::invalid("email", "must be an email address like jane@acme.com")),
        },
        _ => return Err(ApiError::invalid("domain", "give exactly one of `domain` or `email`")),
    };
    let domain = DomainName::parse(&raw).map_err(|m| ApiError::invalid("domain", m))?;
    let owner = state
        .store
        .verified_owner(domain.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no organization has verified {}", domain.as_str())))?;
    Ok(Json(LookupResult { object: "domain_lookup", domain: domain.as_str().to_owned(), organization_id: owner }))
}
