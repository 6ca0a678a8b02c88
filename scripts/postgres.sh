#!/usr/bin/env bash
# Starts (creating it on first use) a dedicated PostgreSQL 15 cluster for `cts bench`, leaving the default cluster
# alone, and prints its connection URL on stdout (progress goes to stderr). Idempotent; run as root.
#   CTS_BENCH_PG_PORT      port of the cluster (default 5433)
#   CTS_BENCH_PG_PASSWORD  password of the role cts_bench (default cts_bench)
set -euo pipefail

pg_version=15
cluster=ctsbench
port="${CTS_BENCH_PG_PORT:-5433}"
role=cts_bench
database=cts_bench
password="${CTS_BENCH_PG_PASSWORD:-cts_bench}"

log() { echo "postgres.sh: $*" >&2; }

# Succeeds when the cluster exists (and, given a status, has it).
cluster_is() {
    pg_lsclusters --no-header | awk -v v="$pg_version" -v c="$cluster" -v s="${1:-}" \
        '$1 == v && $2 == c && (s == "" || $4 == s) { found = 1 } END { exit !found }'
}

if ! command -v pg_ctlcluster >/dev/null; then
    log "installing PostgreSQL"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
fi
# pg_trgm (free text with a trigram index) ships in Debian's postgresql-15 package; older layouts had it in contrib.
if [ ! -f "/usr/share/postgresql/$pg_version/extension/pg_trgm.control" ]; then
    log "installing postgresql-contrib for pg_trgm"
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-contrib >&2
fi

if ! cluster_is; then
    log "creating cluster $pg_version/$cluster on port $port"
    pg_createcluster "$pg_version" "$cluster" --port "$port" --start-conf manual >&2
fi

# The settings a team would give a write-heavy trace store on this machine (applied at the next start). Durability
# stays on: fsync and synchronous_commit keep their defaults; the bench also sets synchronous_commit per session.
pg_set() { pg_conftool "$pg_version" "$cluster" set "$1" "$2"; }
pg_set shared_buffers 1GB
pg_set max_wal_size 8GB
pg_set checkpoint_timeout 15min
pg_set wal_compression on

if ! cluster_is online; then
    log "starting cluster $pg_version/$cluster"
    pg_ctlcluster "$pg_version" "$cluster" start >&2
fi

psql_admin() { runuser -u postgres -- psql --no-psqlrc --quiet --port "$port" --set ON_ERROR_STOP=1 "$@"; }

psql_admin --dbname postgres --set role="$role" --set password="$password" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'role', :'password') \gexec
SQL
if [ "$(psql_admin --dbname postgres --tuples-only --no-align \
    --command "SELECT count(*) FROM pg_database WHERE datname = '$database'")" = 0 ]; then
    log "creating database $database"
    psql_admin --dbname postgres --command "CREATE DATABASE $database OWNER $role" >&2
fi
psql_admin --dbname "$database" --command "CREATE EXTENSION IF NOT EXISTS pg_trgm" >&2

echo "postgres://$role:$password@127.0.0.1:$port/$database"
