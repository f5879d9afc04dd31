-- Incidents, as the SQLite engine keeps them (src/store/sqlite/schema.ts, version 3). Times
-- are Unix milliseconds; priority is the rank (0 = P0).

-- One incident per group from its first firing webhook until it resolves.
CREATE TABLE incidents (
  id bigserial PRIMARY KEY,
  receiver text NOT NULL,
  group_key text NOT NULL,
  dedup_key text NOT NULL,
  alertname text NOT NULL,
  team text NOT NULL,
  title text NOT NULL,
  priority smallint NOT NULL,
  state text NOT NULL CHECK (state IN ('triggered', 'acknowledged', 'resolved')),
  opened_at bigint NOT NULL,
  triggered_at bigint NOT NULL,
  respond_by bigint NOT NULL,
  acknowledged_by text,
  acknowledged_via text,
  acknowledged_at bigint,
  breached_at bigint,
  escalations integer NOT NULL DEFAULT 0,
  repeats_left integer NOT NULL,
  escalate_to text NOT NULL,
  repeat_every_ms bigint,
  -- Armed only while triggered: the escalation timer.
  next_escalation_at bigint,
  resolved_at bigint,
  updated_at bigint NOT NULL
);
CREATE UNIQUE INDEX incidents_open ON incidents (receiver, group_key) WHERE state <> 'resolved';
-- Due timers in order; only armed ones are in it.
CREATE INDEX incidents_due ON incidents (next_escalation_at) WHERE next_escalation_at IS NOT NULL;
CREATE INDEX incidents_dedup ON incidents (dedup_key, id);
CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;
-- The gauges count incidents by priority and state with a plain aggregate over this index
-- (an index-only scan) instead of counters kept by triggers.
CREATE INDEX incidents_counts ON incidents (priority, state);

CREATE TABLE incident_events (
  id bigserial PRIMARY KEY,
  incident_id bigint NOT NULL,
  at bigint NOT NULL,
  kind text NOT NULL,
  detail text NOT NULL
);
CREATE INDEX incident_events_incident ON incident_events (incident_id, id);

-- Held for business hours until then (Unix ms; NULL: never held).
ALTER TABLE deliveries ADD COLUMN deferred_until bigint;
-- A group's held deliveries, skipped when it resolves; only held rows are in it.
CREATE INDEX deliveries_deferred ON deliveries (group_key) WHERE deferred_until IS NOT NULL;
