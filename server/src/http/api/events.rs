//! `/api/v1/events`: the event log (catch-up with a cursor), single events
//! with their delivery attempts, replays, and a live Server-Sent Events
//! stream for support tooling.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration as StdDuration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::ApiQuery;
use super::webhooks::Replayed;
use crate::events::uuid_ceil;
use crate::events::webhooks::EventPattern;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::Store;
use crate::store::deliveries::{AttemptInfo, ReplayScope};
use crate::store::events::{EventFilter, StoredEvent};

/// Readers see an event only once it is this old, so a transaction that
/// committed late with an earlier id is not skipped by a cursor.
pub const SETTLE: Duration = Duration::milliseconds(500);

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/events", get(list))
        .route("/events/stream", get(stream))
        .route("/events/{id}", get(show))
        .route("/events/{id}/replay", post(replay))
}

/// The public form of an event (the webhook body is the same).
#[derive(Serialize)]
pub struct EventOut {
    pub object: &'static str,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub organization_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// Comma-separated types or patterns (`sso.enabled,directory.*`).
    types: Option<String>,
    organization_id: Option<String>,
    after: Option<String>,
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

#[derive(Serialize)]
struct EventList {
    object: &'static str,
    data: Vec<EventOut>,
    list_metadata: ListMetadata,
}

#[derive(Serialize)]
struct ListMetadata {
    /// Pass as `after` to continue; the last id of this page (or your
    /// `after` when the page is empty), so polling never goes backwards.
    after: Option<Uuid>,
}

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

#[derive(Serialize)]
struct EventDetail {
    #[serde(flatten)]
    event: EventOut,
    attempts: Vec<AttemptInfo>,
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<EventDetail>, ApiError> {
    let not_found = || ApiError::NotFound(format!("event {id} not found"));
    let uuid = Uuid::try_parse(&id).map_err(|_| not_found())?;
    let event = state.store.get_event(uuid).await?.ok_or_else(not_found)?;
    let attempts = state.store.list_attempts(uuid).await?;
    Ok(Json(EventDetail { event: event.into(), attempts }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(default)]
    endpoint_id: Option<Uuid>,
}

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

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    types: Option<String>,
    organization_id: Option<String>,
    /// Start after this event id (`Last-Event-ID` takes precedence).
    after: Option<String>,
}

/// `text/event-stream` of events: `id` is the event id (so `Last-Event-ID`
/// resumes), `event` its type, `data` the JSON envelope.
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
