# Policy of one tenant, rendered per tenant by workbench.access.secrets.render_tenant_policy and
# written on the tenant's first grant (policy name: tenant-${tenant}). A request token carries
# this policy and no other (not even `default`), so it reaches this tenant's secrets and
# nothing else: reading another tenant's path is a 403 from OpenBao itself, whatever the broker
# asked for.

# The tenant's static secrets (its S3 keys at tenants/${tenant}/s3).
path "${kv_mount}/data/tenants/${tenant}/*" {
  capabilities = ["read"]
}

# A dynamic PostgreSQL login that can read only the tenant's schema.
path "${database_mount}/creds/tenant-${tenant}" {
  capabilities = ["read"]
}
