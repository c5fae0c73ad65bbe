-- insert_audit_log --
-- $1 id, $2 actor_type, $3 actor_id, $4 actor_role, $5 action, $6 entity_type,
-- $7 entity_id, $8 merchant_id, $9 request_id, $10 ip, $11 payload
INSERT INTO audit_logs (id, actor_type, actor_id, actor_role, action, entity_type, entity_id,
                        merchant_id, request_id, ip, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- list_audit_logs --
-- $1 cursor, $2 limit + 1, $3 action, $4 entity_type, $5 entity_id, $6 actor_id, $7 from, $8 to, $9 merchant_id
SELECT * FROM audit_logs
WHERE ($1::text IS NULL OR id < $1)
  AND ($3::text IS NULL OR action = $3)
  AND ($4::text IS NULL OR entity_type = $4)
  AND ($5::text IS NULL OR entity_id = $5)
  AND ($6::text IS NULL OR actor_id = $6)
  AND ($7::timestamptz IS NULL OR occurred_at >= $7)
  AND ($8::timestamptz IS NULL OR occurred_at < $8)
  AND ($9::text IS NULL OR merchant_id = $9)
ORDER BY id DESC LIMIT $2;
