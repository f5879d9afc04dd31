-- A destination's rate limit holds for the whole deployment: one token bucket per
-- destination, shared by every replica. A claim refills and takes tokens under the row's
-- lock, inside its transaction. per_second and burst are the limit the last claim applied
-- (the catalog's, which a reload may change); claims skip destinations with no whole token.

CREATE TABLE rate_buckets (
  destination text PRIMARY KEY,
  tokens double precision NOT NULL,
  per_second double precision NOT NULL,
  burst double precision NOT NULL,
  updated_at bigint NOT NULL
);
