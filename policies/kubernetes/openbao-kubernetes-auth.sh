#!/bin/sh
# OpenBao/Vault Kubernetes auth for the workbench service (it runs in the hub pod, service
# account `hub` in namespace `workbench`): it logs in with its pod's service-account token and
# gets the broker policy (policies/workbench-broker.hcl); no static root token anywhere.
# Notebook and job pods never log in: they have no service-account token and get data
# credentials from the broker only. Run once, as an OpenBao admin (`bao` or `vault`).
set -eu
BAO=${BAO:-bao}
NAMESPACE=${NAMESPACE:-workbench}
$BAO auth enable kubernetes 2>/dev/null || true
$BAO write auth/kubernetes/config kubernetes_host="https://kubernetes.default.svc:443"
$BAO policy write workbench-broker policies/workbench-broker.hcl
$BAO write auth/kubernetes/role/workbench-service \
    bound_service_account_names=hub \
    bound_service_account_namespaces="$NAMESPACE" \
    token_policies=workbench-broker \
    token_ttl=1h token_max_ttl=24h
