-- What an enqueue reads before it plans, for every group of a batch of webhooks, in one round
-- trip. The order is the point, and why this is a function: each statement of a PL/pgSQL
-- function takes its own snapshot, so the reads after the group locks see everything that
-- earlier holders of those locks committed (one SQL statement would read from a snapshot taken
-- before it waited for them).
--   1. the groups' advisory locks, in hash order (two batches never wait on each other in a
--      cycle); hashtext(group_key) is the key every build has used;
--   2. the groups' open incidents, locked: an escalation firing for one (which adds its
--      destinations to the group's notified ones) commits first, or waits for this transaction;
--   3. for the groups that resolved: their deliveries held for business hours, skipped;
--   4. the destinations notified of each group, read last.
CREATE FUNCTION alert_enricher_enqueue_inputs(groups text[], receivers text[], resolved_groups text[], now_ms bigint)
RETURNS json LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  open_incidents json;
  held json;
  notified json;
BEGIN
  PERFORM pg_advisory_xact_lock(l.h) FROM (SELECT DISTINCT hashtext(g) AS h FROM unnest(groups) AS g ORDER BY 1) AS l;

  -- One index probe per group (a join could be planned as a scan of every incident).
  SELECT json_agg(o ORDER BY o.id) INTO open_incidents FROM unnest(groups, receivers) AS g(group_key, receiver)
    CROSS JOIN LATERAL (SELECT * FROM incidents AS i WHERE i.receiver = g.receiver AND i.group_key = g.group_key
      AND i.state <> 'resolved' FOR UPDATE) AS o;

  WITH s AS (
    UPDATE deliveries SET state = 'skipped', last_reason = 'resolved_while_deferred',
      last_error = 'the group resolved while this notification waited for business hours', updated_at = now_ms
    WHERE group_key = ANY(resolved_groups) AND deferred_until IS NOT NULL AND state = 'pending' AND deferred_until > now_ms
    RETURNING group_key, id, destination, type, priority)
  SELECT json_agg(s ORDER BY s.id) INTO held FROM s;

  SELECT json_agg(n ORDER BY n.group_key, n.destination) INTO notified FROM (
    SELECT group_key, destination, type, priority FROM group_notified WHERE group_key = ANY(groups)) AS n;

  RETURN json_build_object('open', COALESCE(open_incidents, '[]'), 'held', COALESCE(held, '[]'), 'notified', COALESCE(notified, '[]'));
END
$$;
