-- Revocation statements of the OpenBao database role tenant-${tenant}: end the login's open
-- sessions (ending is prompt, not just refusing new logins), then drop it and its grants.
SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}';
REVOKE ALL ON ALL TABLES IN SCHEMA "${schema}" FROM "{{name}}";
REVOKE ALL ON SCHEMA "${schema}" FROM "{{name}}";
REVOKE ALL ON DATABASE "${database}" FROM "{{name}}";
DROP ROLE IF EXISTS "{{name}}";
