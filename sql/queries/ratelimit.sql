-- rate_limit_hit --
-- $1 bucket, $2 key, $3 window seconds: count one request in the current fixed window (windows are
-- aligned on the epoch, so every node agrees where one starts); the count includes this request.
INSERT INTO rate_limit_counts AS r (bucket, key, window_start, window_s, hits)
VALUES ($1, $2, to_timestamp(floor(extract(epoch FROM now()) / $3::float8) * $3::float8), $3::float8, 1)
ON CONFLICT (bucket, key) DO UPDATE
SET hits = CASE WHEN r.window_start = EXCLUDED.window_start THEN r.hits + 1 ELSE 1 END,
    window_start = EXCLUDED.window_start, window_s = EXCLUDED.window_s
RETURNING hits, extract(epoch FROM r.window_start + make_interval(secs => r.window_s) - now())::float8 AS retry_after_s;

-- rate_limit_current --
-- $1 bucket, $2 key: the count of the window still running, if any (nothing is counted).
SELECT hits, extract(epoch FROM window_start + make_interval(secs => window_s) - now())::float8 AS retry_after_s
FROM rate_limit_counts
WHERE bucket = $1 AND key = $2 AND window_start + make_interval(secs => window_s) > now();

-- rate_limit_purge --
-- Windows that have ended.
DELETE FROM rate_limit_counts WHERE window_start + make_interval(secs => window_s) < now();
