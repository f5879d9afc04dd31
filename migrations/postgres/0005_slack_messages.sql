-- A bot-token Slack destination's message of an incident (chat.update edits it), as SQLite
-- schema version 5; kept until the incident is pruned.
CREATE TABLE slack_messages (
  incident_id bigint NOT NULL,
  destination text NOT NULL,
  channel text NOT NULL,
  ts text NOT NULL,
  posted_at bigint NOT NULL,
  last_update_at bigint NOT NULL,
  PRIMARY KEY (incident_id, destination)
);
