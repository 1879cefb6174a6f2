# Policy of the workbench service's own OpenBao token (the broker). It can provision tenants and
# mint request tokens, but it cannot read any tenant's secret: that needs a request token, whose
# only policy is its tenant's. Rendered by workbench.embedded.openbao (the embedded default);
# production operators write the same policy with their own mount names.

# Mint a request token: the role limits its policies to tenant-* and makes it an orphan.
path "auth/token/create/workbench-grant" {
  capabilities = ["update"]
}

# End a request: revoke its token (and so its leases), or one lease at once.
path "auth/token/revoke-accessor" {
  capabilities = ["update"]
}
path "auth/token/lookup-accessor" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}

# Shorten a fresh SQL lease to the request's remaining time.
path "sys/leases/renew" {
  capabilities = ["update"]
}

# Provision a tenant on its first grant: its policy and its database role.
path "sys/policies/acl/tenant-*" {
  capabilities = ["create", "update", "read"]
}
path "${database_mount}/roles/tenant-*" {
  capabilities = ["create", "update", "read"]
}

# Store a tenant's S3 keys (embedded default, written once with cas=0). Write only: no read.
path "${kv_mount}/data/tenants/+/s3" {
  capabilities = ["create", "update"]
}
