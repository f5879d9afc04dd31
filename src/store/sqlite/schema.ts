import type { Database } from 'better-sqlite3'
import { brotliDecompressSync } from 'node:zlib'

// Versioned migrations, tracked in PRAGMA user_version and applied in order at open, each in
// its own transaction. Version 1 is the table as earlier builds created it (a no-op on their
// data directories); later versions only add.

interface Migration { version: number, up: (db: Database) => void }

const MIGRATIONS: Migration[] = [
  {
    version: 1,
    up: (db) => db.exec(`CREATE TABLE IF NOT EXISTS deliveries (
      id INTEGER PRIMARY KEY,
      destination TEXT NOT NULL,
      type TEXT NOT NULL,
      priority INTEGER NOT NULL,
      idempotency_key TEXT NOT NULL,
      group_key TEXT NOT NULL,
      body TEXT NOT NULL,
      state TEXT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER NOT NULL,
      received_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      last_error TEXT,
      last_reason TEXT,
      sent_at INTEGER)`)
  },
  {
    version: 2,
    up: (db) => {
      db.exec(`ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER;
        -- Idempotency: a key is taken until it expires (the window), whatever became of its row.
        DROP TABLE IF EXISTS idempotency_keys;
        CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);
        -- Destinations told that a group fires, until it resolves (its resolve goes there too).
        CREATE TABLE group_notified (
          group_key TEXT NOT NULL, destination TEXT NOT NULL, type TEXT NOT NULL,
          priority INTEGER NOT NULL, updated_at INTEGER NOT NULL,
          PRIMARY KEY (group_key, destination)) WITHOUT ROWID;
        CREATE INDEX group_notified_updated ON group_notified (updated_at);
        -- Housekeeping writes here: a write that succeeds proves the store writable again.
        CREATE TABLE store_heartbeat (id INTEGER PRIMARY KEY CHECK (id = 1), at INTEGER NOT NULL, probe BLOB);
        DROP INDEX IF EXISTS deliveries_due;
        DROP INDEX IF EXISTS deliveries_created;
        DROP INDEX IF EXISTS deliveries_active_group;
        -- Claim order: priority, then due time (the claim reads it in order, no sort).
        CREATE INDEX deliveries_claim ON deliveries (state, priority, next_attempt_at, id);
        -- Order and superseding within one destination and group.
        CREATE INDEX deliveries_group ON deliveries (destination, group_key, state, id);
        -- Admin listing, housekeeping, lapsed claims.
        CREATE INDEX IF NOT EXISTS deliveries_state_updated ON deliveries (state, updated_at);
        -- Gauges: pending count and oldest age per priority.
        CREATE INDEX IF NOT EXISTS deliveries_age ON deliveries (state, priority, received_at);`)
      // Earlier builds staged new rows in a second table and compressed large bodies.
      const staged = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'staged_deliveries'").get()
      if (staged !== undefined) {
        db.exec(`INSERT INTO deliveries (id, destination, type, priority, idempotency_key, group_key, body, state, attempts,
            next_attempt_at, received_at, created_at, updated_at, last_error, last_reason, sent_at)
          SELECT id, destination, type, priority, idempotency_key, group_key, body, state, attempts,
            next_attempt_at, received_at, created_at, updated_at, last_error, last_reason, sent_at FROM staged_deliveries;
          DROP TABLE staged_deliveries;`)
      }
      // Earlier builds kept the window in memory, reloaded from the rows: carry it over at the
      // default length, so a retry arriving just after the upgrade is still a duplicate.
      db.prepare(`INSERT OR IGNORE INTO idempotency_keys (key, expires_at)
        SELECT idempotency_key, MAX(created_at) + 600000 FROM deliveries WHERE created_at > ? GROUP BY idempotency_key`).run(Date.now() - 600_000)
      const decompress = db.prepare('UPDATE deliveries SET body = ? WHERE id = ?')
      for (const row of db.prepare("SELECT id, body FROM deliveries WHERE typeof(body) = 'blob'").all() as Array<{ id: number, body: Buffer }>) {
        decompress.run(brotliDecompressSync(row.body).toString('utf8'), row.id)
      }
    }
  },
  {
    version: 3,
    up: (db) => db.exec(`
      -- One incident per group from its first firing webhook until it resolves.
      CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        receiver TEXT NOT NULL,
        group_key TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        alertname TEXT NOT NULL,
        team TEXT NOT NULL,
        title TEXT NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        opened_at INTEGER NOT NULL,
        triggered_at INTEGER NOT NULL,
        respond_by INTEGER NOT NULL,
        acknowledged_by TEXT,
        acknowledged_via TEXT,
        acknowledged_at INTEGER,
        breached_at INTEGER,
        escalations INTEGER NOT NULL DEFAULT 0,
        repeats_left INTEGER NOT NULL,
        escalate_to TEXT NOT NULL,
        repeat_every_ms INTEGER,
        -- Armed only while triggered: the escalation timer.
        next_escalation_at INTEGER,
        resolved_at INTEGER,
        updated_at INTEGER NOT NULL);
      CREATE UNIQUE INDEX incidents_open ON incidents (receiver, group_key) WHERE state <> 'resolved';
      -- Due timers in order; only armed ones are in it, so 10,000 quiet incidents cost nothing.
      CREATE INDEX incidents_due ON incidents (next_escalation_at) WHERE next_escalation_at IS NOT NULL;
      CREATE INDEX incidents_dedup ON incidents (dedup_key, id);
      CREATE INDEX incidents_resolved ON incidents (resolved_at) WHERE resolved_at IS NOT NULL;
      CREATE TABLE incident_events (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL);
      CREATE INDEX incident_events_incident ON incident_events (incident_id, id);
      -- Incidents by priority and state, kept by triggers: the gauges read 12 rows, not every
      -- open incident.
      CREATE TABLE incident_counts (priority INTEGER NOT NULL, state TEXT NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (priority, state)) WITHOUT ROWID;
      INSERT INTO incident_counts (priority, state, n)
        SELECT p.value, s.value, 0 FROM json_each('[0,1,2,3]') AS p, json_each('["triggered","acknowledged","resolved"]') AS s;
      CREATE TRIGGER incident_counts_insert AFTER INSERT ON incidents BEGIN
        UPDATE incident_counts SET n = n + 1 WHERE priority = NEW.priority AND state = NEW.state;
      END;
      CREATE TRIGGER incident_counts_update AFTER UPDATE OF priority, state ON incidents
        WHEN OLD.priority <> NEW.priority OR OLD.state <> NEW.state BEGIN
        UPDATE incident_counts SET n = n - 1 WHERE priority = OLD.priority AND state = OLD.state;
        UPDATE incident_counts SET n = n + 1 WHERE priority = NEW.priority AND state = NEW.state;
      END;
      CREATE TRIGGER incident_counts_delete AFTER DELETE ON incidents BEGIN
        UPDATE incident_counts SET n = n - 1 WHERE priority = OLD.priority AND state = OLD.state;
      END;
      -- Held for business hours until then (Unix ms; NULL: never held).
      ALTER TABLE deliveries ADD COLUMN deferred_until INTEGER;
      -- A group's held deliveries, skipped when it resolves; only held rows are in it.
      CREATE INDEX deliveries_deferred ON deliveries (group_key) WHERE deferred_until IS NOT NULL;`)
  },
  {
    version: 4,
    // Group first: a webhook's deliveries (one per destination) sit in one index page.
    up: (db) => db.exec(`DROP INDEX deliveries_group;
      CREATE INDEX deliveries_group ON deliveries (group_key, destination, state, id);`)
  },
  {
    version: 5,
    // A bot-token Slack destination's message of an incident (chat.update edits it), kept until
    // the incident is pruned.
    up: (db) => db.exec(`CREATE TABLE slack_messages (
        incident_id INTEGER NOT NULL,
        destination TEXT NOT NULL,
        channel TEXT NOT NULL,
        ts TEXT NOT NULL,
        posted_at INTEGER NOT NULL,
        last_update_at INTEGER NOT NULL,
        PRIMARY KEY (incident_id, destination)) WITHOUT ROWID;`)
  },
  {
    version: 6,
    // Partial indexes: a row is in deliveries_active while it waits or is being sent (claims,
    // lapsed claims, the pending gauges: the claim index with received_at added, replacing
    // deliveries_age), and in deliveries_settled once it is sent, skipped or dead (listing,
    // housekeeping, the dead count). A new pending row touches one of them, not three. Written
    // with OR, not IN: SQLite uses a partial index only for a query whose WHERE repeats a term
    // of the index's (state = 'pending' matches; see the EXPLAIN QUERY PLAN test).
    up: (db) => db.exec(`DROP INDEX deliveries_claim;
      DROP INDEX deliveries_age;
      DROP INDEX deliveries_state_updated;
      CREATE INDEX deliveries_active ON deliveries (state, priority, next_attempt_at, id, received_at)
        WHERE state = 'pending' OR state = 'sending';
      CREATE INDEX deliveries_settled ON deliveries (state, updated_at)
        WHERE state = 'sent' OR state = 'skipped' OR state = 'dead';`)
  }
]

export const SCHEMA_VERSION = MIGRATIONS.length

// `upTo`: stop at an older version (tests build a previous build's data directory with it).
export function migrate (db: Database, upTo = SCHEMA_VERSION): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new Error(`the store was written by a newer alert-enricher (schema ${current}, this build knows ${SCHEMA_VERSION}); refusing to start`)
  }
  for (const m of MIGRATIONS.filter((m) => m.version > current && m.version <= upTo)) {
    db.transaction(() => {
      m.up(db)
      db.pragma(`user_version = ${m.version}`)
    }).immediate()
  }
}
