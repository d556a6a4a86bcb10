-- Wake delivery workers only when a statement actually queued deliveries:
-- every event insert runs the fan-out statement, and most match no endpoint.
CREATE OR REPLACE FUNCTION portico_notify_deliveries() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM pg_notify('portico_deliveries', '');
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER webhook_deliveries_notify ON webhook_deliveries;
CREATE TRIGGER webhook_deliveries_notify
    AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION portico_notify_deliveries();
