-- Group first, as SQLite schema version 4, and over every state: besides ordering and
-- superseding within a destination and group, it serves an escalation's lookup of the
-- group's latest queued webhook and an incident timeline's sent notifications.
DROP INDEX deliveries_group;
CREATE INDEX deliveries_group ON deliveries (group_key, destination, state, id);
