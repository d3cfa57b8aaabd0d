-- 004_device_revocation.sql: removeDevice revokes the device's tokens.
--
-- tokens_before: unix seconds; a connection whose token was issued (iat)
-- at or before it is refused (docs/tokens.md "Revocation").  Set by
-- chat_remove_device, read by chat_device_connect_batch.  Device rows are
-- deactivated, never deleted, so a revocation is never forgotten.
ALTER TABLE devices ADD COLUMN tokens_before bigint;
