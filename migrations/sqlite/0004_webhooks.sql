-- Webhook endpoints, their subscriptions, and per-(event, endpoint) deliveries.

CREATE TABLE webhook_endpoints (
    id          BLOB PRIMARY KEY NOT NULL,
    url         TEXT NOT NULL,
    description TEXT,
    event_types TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    secret_enc  TEXT NOT NULL,
    disabled_reason TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- One row per subscribed pattern, as a LIKE pattern (`directory.%`), so the
-- fan-out is one INSERT … SELECT in the event's transaction.
CREATE TABLE webhook_subscriptions (
    endpoint_id BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    pattern     TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, pattern)
);

CREATE TABLE webhook_deliveries (
    event_id         BLOB NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    endpoint_id      BLOB NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    completed_at     TEXT,
    PRIMARY KEY (event_id, endpoint_id)
);
-- Claim queries read only these two small partial indexes.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_leased ON webhook_deliveries (lease_expires_at) WHERE status = 'delivering';
CREATE INDEX webhook_deliveries_owner ON webhook_deliveries (lease_owner) WHERE lease_owner IS NOT NULL;
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, status);

CREATE TABLE webhook_attempts (
    id            BLOB PRIMARY KEY NOT NULL,
    event_id      BLOB NOT NULL,
    endpoint_id   BLOB NOT NULL,
    attempted_at  TEXT NOT NULL,
    status_code   INTEGER,
    latency_ms    INTEGER NOT NULL,
    response      TEXT,
    error         TEXT,
    FOREIGN KEY (event_id, endpoint_id) REFERENCES webhook_deliveries (event_id, endpoint_id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (event_id, endpoint_id, attempted_at);
