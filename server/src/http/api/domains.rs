//! `/api/v1/organizations/{id}/domains`: add, list, show, delete, verify now;
//! `/api/v1/domains/lookup`: which organization owns a verified domain.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiJson, ApiQuery, parse_id};
use crate::domains::Domain;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::orgs::DomainName;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/{id}/domains", get(list).post(add))
        .route("/organizations/{id}/domains/{domain}", get(show).delete(remove))
        .route("/organizations/{id}/domains/{domain}/verify", post(verify))
        .route("/domains/lookup", get(lookup))
}

async fn require_org(state: &AppState, raw: &str) -> Result<Uuid, ApiError> {
    let id = parse_id(raw, "organization")?;
    state.store.get_org(id).await?.ok_or_else(|| ApiError::NotFound(format!("organization {raw} not found")))?;
    Ok(id)
}

fn domain_not_found(domain: &str) -> ApiError {
    ApiError::NotFound(format!("domain {domain:?} is not a domain of this organization"))
}

#[derive(Serialize)]
struct DomainList {
    object: &'static str,
    data: Vec<Domain>,
}

async fn list(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DomainList>, ApiError> {
    let id = require_org(&state, &id).await?;
    let data = state.store.list_domains(&state.domains.policy, id).await?;
    Ok(Json(DomainList { object: "list", data }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    domain: String,
}

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

async fn show(
    State(state): State<AppState>,
    Path((id, domain)): Path<(String, String)>,
) -> Result<Json<Domain>, ApiError> {
    let org = parse_id(&id, "organization")?;
    let name = domain.to_ascii_lowercase();
    state.store.get_domain(&state.domains.policy, org, &name).await?.map(Json).ok_or_else(|| domain_not_found(&domain))
}

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

/// Checks DNS now and answers with the domain's state after the check.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupParams {
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize)]
struct LookupResult {
    object: &'static str,
    domain: String,
    organization_id: Uuid,
}

/// The organization that verified the domain (of an email address): what
/// domain-based SSO routing uses. Pending and failed domains never match.
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
