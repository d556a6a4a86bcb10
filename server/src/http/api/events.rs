//! `/api/v1/events`: the event log (catch-up with a cursor), single events
//! with their delivery attempts, replays, and a live Server-Sent Events
//! stream for support tooling.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration as StdDuration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::ApiQuery;
use super::webhooks::Replayed;
use crate::events::uuid_ceil;
use crate::events::webhooks::EventPattern;
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::store::Store;
use crate::store::deliveries::{AttemptInfo, ReplayScope};
use crate::store::events::{EventFilter, StoredEvent};

/// Readers see an event only once it is this old, so a transaction that
/// committed late with an earlier id is not skipped by a cursor.
pub const SETTLE: Duration = Duration::milliseconds(500);

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(stream)).routes(routes!(show)).routes(routes!(replay))
}

/// The public form of an event (the webhook body is the same).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Event)]
pub struct EventOut {
    #[schema(schema_with = crate::fields::schema::object::event)]
    pub object: &'static str,
    /// UUIDv7 (time-ordered), also the webhook's `webhook-id`.
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(example = "sso.enabled")]
    pub kind: String,
    #[schema(required = true)]
    pub organization_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The event's payload; its shape depends on `type` (see docs/events.md).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl From<StoredEvent> for EventOut {
    fn from(e: StoredEvent) -> Self {
        EventOut {
            object: "event",
            id: e.id,
            kind: e.kind,
            organization_id: e.organization_id,
            occurred_at: e.occurred_at,
            data: e.data.0,
        }
    }
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Comma-separated event types or patterns (`sso.enabled,directory.*`),
    /// at most 20.
    types: Option<String>,
    /// Only this organization's events.
    #[param(format = Uuid)]
    organization_id: Option<String>,
    /// Event id: return events after it (`list_metadata.after`).
    #[param(format = Uuid)]
    after: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<u32>,
}

/// Parses `types` and `organization_id` into a filter.
pub fn parse_filter(types: Option<&str>, organization_id: Option<&str>) -> Result<EventFilter, ApiError> {
    let mut filter = EventFilter::default();
    if let Some(types) = types.filter(|t| !t.trim().is_empty()) {
        for raw in types.split(',') {
            let p = EventPattern::parse(raw).map_err(|m| ApiError::invalid("types", m))?;
            filter.type_likes.push(p.to_like());
        }
        if filter.type_likes.len() > 20 {
            return Err(ApiError::invalid("types", "at most 20 types or patterns"));
        }
    }
    if let Some(org) = organization_id {
        filter.organization_id =
            Some(Uuid::try_parse(org).map_err(|_| ApiError::invalid("organization_id", "must be a UUID"))?);
    }
    Ok(filter)
}

fn parse_cursor(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw)
        .map_err(|_| ApiError::BadRequest("invalid `after`: pass the id of the last event you saw".into()))
}

/// A page of events in id (time) order.
#[derive(Serialize, utoipa::ToSchema)]
struct EventList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<EventOut>,
    list_metadata: ListMetadata,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventListMetadata)]
struct ListMetadata {
    /// Pass as `after` to continue; the last id of this page (or your
    /// `after` when the page is empty), so polling never goes backwards.
    after: Option<Uuid>,
}

/// Events in id (time) order, cursor-paginated.
///
/// Events younger than 500 ms are held back so a cursor never skips one.
#[utoipa::path(
    get,
    path = "/events",
    operation_id = "listEvents",
    tag = "events",
    params(ListParams),
    responses(
        (status = 200, description = "A page of events", body = EventList),
        (status = 400, description = "Bad cursor or query string", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter or limit", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list(State(state): State<AppState>, ApiQuery(p): ApiQuery<ListParams>) -> Result<Json<EventList>, ApiError> {
    let limit = p.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 1000"));
    }
    let mut filter = parse_filter(p.types.as_deref(), p.organization_id.as_deref())?;
    filter.after = p.after.as_deref().map(parse_cursor).transpose()?;
    filter.until = Some(uuid_ceil(OffsetDateTime::now_utc() - SETTLE));
    let events = state.store.query_events(&filter, limit).await?;
    let after = events.last().map(|e| e.id).or(filter.after);
    Ok(Json(EventList {
        object: "list",
        data: events.into_iter().map(EventOut::from).collect(),
        list_metadata: ListMetadata { after },
    }))
}

/// An event with its delivery attempts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = EventWithAttempts)]
struct EventDetail {
    #[serde(flatten)]
    event: EventOut,
    /// Every delivery attempt of this event, to any endpoint.
    attempts: Vec<AttemptInfo>,
}

/// One event with its delivery attempts.
#[utoipa::path(
    get,
    path = "/events/{id}",
    operation_id = "getEvent",
    tag = "events",
    params(("id" = Uuid, Path, description = "Event id")),
    responses(
        (status = 200, description = "The event and `attempts`", body = EventDetail),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<EventDetail>, ApiError> {
    let not_found = || ApiError::NotFound(format!("event {id} not found"));
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found())?;
    let event = state.store.get_event(uuid).await?.ok_or_else(not_found)?;
    let attempts = state.store.list_attempts(uuid).await?;
    Ok(Json(EventDetail { event: event.into(), attempts }))
}

/// Where to replay an event; the body is optional.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EventReplay)]
struct ReplayBody {
    /// Only this endpoint; absent: every subscribed endpoint.
    #[serde(default)]
    endpoint_id: Option<Uuid>,
}

/// Deliver one event again to one endpoint or every subscribed one.
#[utoipa::path(
    post,
    path = "/events/{id}/replay",
    operation_id = "replayEvent",
    tag = "events",
    params(("id" = Uuid, Path, description = "Event id")),
    request_body(content = Option<ReplayBody>, description = "Optional; empty means every subscribed endpoint"),
    responses(
        (status = 202, description = "Queued", body = Replayed),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown endpoint or invalid body", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let not_found = || ApiError::NotFound(format!("event {id} not found"));
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found())?;
    state.store.get_event(uuid).await?.ok_or_else(not_found)?;
    // The body is optional: empty means "every subscribed endpoint".
    let body: ReplayBody = if body.iter().all(u8::is_ascii_whitespace) {
        ReplayBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::invalid("body", e.to_string()))?
    };
    let endpoint = body.endpoint_id;
    if let Some(endpoint) = endpoint {
        state
            .store
            .get_endpoint(endpoint)
            .await?
            .ok_or_else(|| ApiError::invalid("endpoint_id", "no such webhook endpoint"))?;
    }
    let queued = state.store.replay(ReplayScope::Event(uuid), endpoint).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { object: "replay", queued })))
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    /// Comma-separated event types or patterns (`sso.enabled,directory.*`),
    /// at most 20.
    types: Option<String>,
    /// Only this organization's events.
    #[param(format = Uuid)]
    organization_id: Option<String>,
    /// Start after this event id (`Last-Event-ID` takes precedence); absent:
    /// only events from now on.
    #[param(format = Uuid)]
    after: Option<String>,
}

/// Server-Sent Events, resumable with `Last-Event-ID`.
///
/// Each message's `id` is the event id (so `Last-Event-ID` resumes), `event`
/// its type, `data` the event JSON. A comment keeps the connection alive every 15 s.
#[utoipa::path(
    get,
    path = "/events/stream",
    operation_id = "streamEvents",
    tag = "events",
    params(
        StreamParams,
        ("Last-Event-ID" = Option<Uuid>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "`id:` event id, `event:` type, `data:` the event JSON", content_type = "text/event-stream", body = String),
        (status = 400, description = "Bad cursor or query string", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad filter", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let mut filter = parse_filter(p.types.as_deref(), p.organization_id.as_deref())?;
    let resume = headers.get("last-event-id").and_then(|v| v.to_str().ok()).or(p.after.as_deref());
    filter.after = Some(match resume {
        Some(raw) => parse_cursor(raw)?,
        // A new subscriber starts with what happens from now on.
        None => uuid_ceil(OffsetDateTime::now_utc() - SETTLE),
    });
    let stream = follow(state.store.clone(), filter).into_stream();
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(StdDuration::from_secs(15))))
}

/// Follows the event log from `filter.after`, yielding events as they
/// settle. Shared by the SSE endpoint and `portico events tail`.
pub struct Follow {
    store: Store,
    filter: EventFilter,
    buffer: VecDeque<StoredEvent>,
}

/// Starts following.
pub fn follow(store: Store, filter: EventFilter) -> Follow {
    Follow { store, filter, buffer: VecDeque::new() }
}

impl Follow {
    /// The next event; waits (polling every 250 ms, or sooner on a local
    /// commit) until one arrives. Database errors are retried.
    pub async fn next(&mut self) -> StoredEvent {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.filter.after = Some(e.id);
                return e;
            }
            self.filter.until = Some(uuid_ceil(OffsetDateTime::now_utc() - SETTLE));
            match self.store.query_events(&self.filter, 200).await {
                Ok(events) if !events.is_empty() => self.buffer.extend(events),
                Ok(_) => {
                    tokio::select! {
                        _ = self.store.events_announced() => tokio::time::sleep(SETTLE.unsigned_abs()).await,
                        _ = tokio::time::sleep(StdDuration::from_millis(250)) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = format!("{e:#}"), "event stream query failed; retrying");
                    tokio::time::sleep(StdDuration::from_secs(1)).await;
                }
            }
        }
    }

    fn into_stream(self) -> impl Stream<Item = Result<SseEvent, Infallible>> {
        futures_util::stream::unfold(self, |mut f| async move {
            let e = f.next().await;
            let id = e.id.to_string();
            let kind = e.kind.clone();
            let json = serde_json::to_string(&EventOut::from(e)).expect("event serializes");
            Some((Ok(SseEvent::default().id(id).event(kind).data(json)), f))
        })
    }
}
