#!/usr/bin/env bash
# Creates the Secrets the examples refer to, with random passwords, without writing them to
# disk or to Git. Idempotent: an existing Secret is left alone (its password is in use).
#
#   examples/shared-infra/create-secrets.sh            # after: kubectl apply -f examples/shared-infra/namespaces.yaml
#
# Creates ahlt-infra/postgres-admin, ahlt-infra/neo4j-auth and, in each environment
# namespace, neo4j-credentials (the graph login the app uses).
set -euo pipefail

kubectl=${KUBECTL:-kubectl}
env_namespaces=${ENV_NAMESPACES:-ahlt-dev ahlt-staging ahlt-prod}

random() { openssl rand -hex 24; }

exists() { "$kubectl" -n "$1" get secret "$2" >/dev/null 2>&1; }

if exists ahlt-infra postgres-admin; then
    echo "ahlt-infra/postgres-admin exists; kept"
else
    "$kubectl" -n ahlt-infra create secret generic postgres-admin \
        --from-literal=host=postgres.ahlt-infra.svc.cluster.local \
        --from-literal=port=5432 \
        --from-literal=username=postgres \
        --from-literal=password="$(random)" \
        --from-literal=sslmode=disable
fi

if exists ahlt-infra neo4j-auth; then
    echo "ahlt-infra/neo4j-auth exists; kept"
    neo4j_password=$("$kubectl" -n ahlt-infra get secret neo4j-auth -o jsonpath='{.data.NEO4J_AUTH}' \
        | base64 -d | cut -d/ -f2-)
else
    neo4j_password=$(random)
    "$kubectl" -n ahlt-infra create secret generic neo4j-auth \
        --from-literal=NEO4J_AUTH="neo4j/$neo4j_password"
fi

# Neo4j Community has no per-database users: every environment logs in as neo4j and is kept
# apart by AHLT_ENV_NAME. With Enterprise, create one user per environment instead.
for ns in $env_namespaces; do
    if exists "$ns" neo4j-credentials; then
        echo "$ns/neo4j-credentials exists; kept"
    else
        "$kubectl" -n "$ns" create secret generic neo4j-credentials \
            --from-literal=username=neo4j \
            --from-literal=password="$neo4j_password"
    fi
done
