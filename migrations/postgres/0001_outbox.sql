-- The outbox, as the SQLite engine keeps it (src/store/sqlite/schema.ts, version 2). Times
-- are Unix milliseconds; priority is the rank (0 = P0) so ORDER BY priority puts P0 first.

CREATE TABLE deliveries (
  id bigserial PRIMARY KEY,
  destination text NOT NULL,
  type text NOT NULL,
  priority smallint NOT NULL,
  idempotency_key text NOT NULL,
  group_key text NOT NULL,
  body text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead', 'skipped')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  claimed_until bigint,
  received_at bigint NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  last_error text,
  last_reason text,
  sent_at bigint
);
-- Claim order among the claimable rows: priority, then due time.
CREATE INDEX deliveries_claim ON deliveries (priority, next_attempt_at, id) WHERE state = 'pending';
-- Lapsed claims.
CREATE INDEX deliveries_sending ON deliveries (claimed_until) WHERE state = 'sending';
-- Order and superseding within one destination and group.
CREATE INDEX deliveries_group ON deliveries (destination, group_key, id) WHERE state IN ('pending', 'sending');
-- Admin listing, housekeeping.
CREATE INDEX deliveries_state_updated ON deliveries (state, updated_at);
CREATE INDEX deliveries_updated ON deliveries (updated_at, id);

-- Idempotency: a key is taken until it expires (the window), whatever became of its row.
CREATE TABLE idempotency_keys (key text PRIMARY KEY, expires_at bigint NOT NULL);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

-- Destinations told that a group fires, until it resolves (its resolve goes there too).
CREATE TABLE group_notified (
  group_key text NOT NULL,
  destination text NOT NULL,
  type text NOT NULL,
  priority smallint NOT NULL,
  updated_at bigint NOT NULL,
  PRIMARY KEY (group_key, destination)
);
CREATE INDEX group_notified_updated ON group_notified (updated_at);

-- Housekeeping writes here: a write that succeeds proves the database writable again.
CREATE TABLE store_heartbeat (id integer PRIMARY KEY CHECK (id = 1), at bigint NOT NULL);
