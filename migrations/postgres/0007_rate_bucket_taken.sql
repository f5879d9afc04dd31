-- What the last claim took from the bucket: a claim refills and takes in one statement and reads
-- its grant back from here (RETURNING shows only the row as written).
ALTER TABLE rate_buckets ADD COLUMN taken double precision NOT NULL DEFAULT 0;
