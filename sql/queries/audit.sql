-- insert_audit_log --
-- $1 id, $2 actor_type, $3 actor_id, $4 actor_role, $5 action, $6 entity_type,
-- $7 entity_id, $8 merchant_id, $9 request_id, $10 ip, $11 payload
INSERT INTO audit_logs (id, actor_type, actor_id, actor_role, action, entity_type, entity_id,
                        merchant_id, request_id, ip, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11);
