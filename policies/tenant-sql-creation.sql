-- Creation statements of the OpenBao database role tenant-${tenant} (PostgreSQL plugin).
-- OpenBao fills in {{name}}, {{password}} and {{expiration}}; the workbench, the tenant's names.
-- The login reaches the tenant's schema, read only, and nothing else in ${database}.
CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';
GRANT CONNECT ON DATABASE "${database}" TO "{{name}}";
GRANT USAGE ON SCHEMA "${schema}" TO "{{name}}";
GRANT SELECT ON ALL TABLES IN SCHEMA "${schema}" TO "{{name}}";
