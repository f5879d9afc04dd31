-- Alertmanager bounds neither a groupKey nor a receiver (a long label value in the group makes
-- the key kilobytes long), but a B-tree entry must fit in about a third of a page: such a group
-- failed every insert (SQLSTATE 54000, "index row size exceeds btree maximum"), so its webhook
-- was answered 503 until Alertmanager gave up, and it was never paged. Every index that held
-- the raw text is now keyed on md5() of it, a fixed-size digest (md5(text) is immutable, so it
-- can be indexed, and an expression index needs no new column). Queries compare the digest, to
-- use these indexes, and the raw text too, so two groups are never merged.
--
-- The unique ones are unique on the digest, slightly stronger than on the text: two groups whose
-- keys shared an md5 could not both have an open incident (the second's enqueue is refused) nor
-- both remember one destination (the second's write leaves the first's row as it is). Group
-- keys do not collide by chance; a pair crafted to collide could hold back its own group, never
-- merge it with another. Chosen over a stored sha256 column, which every insert (and an older
-- replica during a rollout) would have to fill. An older build's statements name the old key in
-- ON CONFLICT: its replicas cannot store webhooks once this is applied (docs/delivery.md).

DROP INDEX deliveries_group;
CREATE INDEX deliveries_group ON deliveries (md5(group_key), destination, state, id);

DROP INDEX deliveries_deferred;
CREATE INDEX deliveries_deferred ON deliveries (md5(group_key)) WHERE deferred_until IS NOT NULL;

DROP INDEX incidents_open;
CREATE UNIQUE INDEX incidents_open ON incidents (md5(receiver), md5(group_key)) WHERE state <> 'resolved';

-- An expression cannot be a primary key: the key becomes a unique index (ON CONFLICT names it
-- by its expressions).
ALTER TABLE group_notified DROP CONSTRAINT group_notified_pkey;
CREATE UNIQUE INDEX group_notified_group ON group_notified (md5(group_key), destination);

-- As migration 0006, with each group lookup on the digest indexes.
CREATE OR REPLACE FUNCTION alert_enricher_enqueue_inputs(groups text[], receivers text[], resolved_groups text[], now_ms bigint)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  open_incidents json;
  held json;
  notified json;
  group_refs text[] := ARRAY(SELECT md5(g) FROM unnest(groups) AS g);
  resolved_refs text[] := ARRAY(SELECT md5(g) FROM unnest(resolved_groups) AS g);
BEGIN
  PERFORM pg_advisory_xact_lock(l.h) FROM (SELECT DISTINCT hashtext(g) AS h FROM unnest(groups) AS g ORDER BY 1) AS l;

  -- One index probe per group (a join could be planned as a scan of every incident).
  SELECT json_agg(o ORDER BY o.id) INTO open_incidents FROM unnest(groups, receivers) AS g(group_key, receiver)
    CROSS JOIN LATERAL (SELECT * FROM incidents AS i WHERE md5(i.receiver) = md5(g.receiver) AND md5(i.group_key) = md5(g.group_key)
      AND i.receiver = g.receiver AND i.group_key = g.group_key AND i.state <> 'resolved' FOR UPDATE) AS o;

  WITH s AS (
    UPDATE deliveries SET state = 'skipped', last_reason = 'resolved_while_deferred',
      last_error = 'the group resolved while this notification waited for business hours', updated_at = now_ms
    WHERE md5(group_key) = ANY(resolved_refs) AND group_key = ANY(resolved_groups)
      AND deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > now_ms
    RETURNING group_key, id, destination, type, priority)
  SELECT json_agg(s ORDER BY s.id) INTO held FROM s;

  SELECT json_agg(n ORDER BY n.group_key, n.destination) INTO notified FROM (
    SELECT group_key, destination, type, priority FROM group_notified
    WHERE md5(group_key) = ANY(group_refs) AND group_key = ANY(groups)) AS n;

  RETURN json_build_object('open', COALESCE(open_incidents, '[]'), 'held', COALESCE(held, '[]'), 'notified', COALESCE(notified, '[]'));
END
$$;
