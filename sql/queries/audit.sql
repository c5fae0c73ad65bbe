-- insert_audit_log --
-- $1 id, $2 actor_type, $3 actor_id, $4 actor_role, $5 action, $6 entity_type,
-- $7 entity_id, $8 merchant_id, $9 request_id, $10 ip, $11 payload
INSERT INTO audit_logs (id, actor_type, actor_id, actor_role, action, entity_type, entity_id,
                        merchant_id, request_id, ip, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);

-- list_audit_logs --
-- $1 cursor, $2 limit + 1, $3 action, $4 entity_type, $5 entity_id, $6 actor_id, $7 from, $8 to, $9 merchant_id
-- With the acting user's email, from the table its actor_type names.
SELECT a.*, COALESCE(au.email, mu.email) AS actor_email
FROM audit_logs a
LEFT JOIN admin_users au ON a.actor_type = 'admin' AND au.id = a.actor_id
LEFT JOIN merchant_users mu ON a.actor_type = 'merchant' AND mu.id = a.actor_id
WHERE ($1::text IS NULL OR a.id < $1)
  AND ($3::text IS NULL OR a.action = $3)
  AND ($4::text IS NULL OR a.entity_type = $4)
  AND ($5::text IS NULL OR a.entity_id = $5)
  AND ($6::text IS NULL OR a.actor_id = $6)
  AND ($7::timestamptz IS NULL OR a.occurred_at >= $7)
  AND ($8::timestamptz IS NULL OR a.occurred_at < $8)
  AND ($9::text IS NULL OR a.merchant_id = $9)
ORDER BY a.id DESC LIMIT $2;
