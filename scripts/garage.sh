#!/usr/bin/env bash
# A single-node Garage (S3-compatible object store) on loopback for the tests.
#   scripts/garage.sh start DIR   starts it with its data under DIR and writes DIR/env (CTS_OBS_* of a key allowed
#                                 to create buckets, and CTS_TEST_BUCKET, a bucket that key owns); prints the
#                                 env file's path
#   scripts/garage.sh stop DIR    stops it
# `garage` must be on PATH (scripts/test.sh installs it with `cargo install garage` when missing).
set -euo pipefail

command=${1:?usage: garage.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: garage.sh start|stop DIR}")
config="$dir/garage.toml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case "$command" in
start)
  mkdir -p "$dir/meta" "$dir/data"
  s3_port=$(free_port)
  rpc_port=$(free_port)
  cat >"$config" <<TOML
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(openssl rand -hex 32 2>/dev/null || python3 -c 'import secrets; print(secrets.token_hex(32))')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
TOML
  garage -c "$config" server >"$dir/garage.log" 2>&1 &
  echo $! >"$dir/garage.pid"
  for _ in $(seq 100); do
    garage -c "$config" status >/dev/null 2>&1 && break
    sleep 0.2
  done
  node=$(garage -c "$config" node id -q 2>/dev/null | cut -d@ -f1)
  garage -c "$config" layout assign -z dc1 -c 1G "$node" >/dev/null
  garage -c "$config" layout apply --version 1 >/dev/null
  key_id="GK$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  garage -c "$config" key import --yes -n cts-tests "$key_id" "$secret" >/dev/null
  garage -c "$config" key allow --create-bucket "$key_id" >/dev/null
  # A bucket that exists from the start, for tests that only check or use one.
  garage -c "$config" bucket create cts-tests >/dev/null
  garage -c "$config" bucket allow --read --write --owner cts-tests --key "$key_id" >/dev/null
  cat >"$dir/env" <<ENV
export CTS_OBS_ENDPOINT=http://127.0.0.1:$s3_port
export CTS_OBS_REGION=garage
export CTS_OBS_ACCESS_KEY=$key_id
export CTS_OBS_SECRET_KEY=$secret
export CTS_OBS_PATH_STYLE=true
export CTS_TEST_BUCKET=cts-tests
ENV
  # The S3 API answers once the layout is live.
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break
    sleep 0.2
  done
  echo "$dir/env"
  ;;
stop)
  if [[ -f "$dir/garage.pid" ]]; then
    kill "$(cat "$dir/garage.pid")" 2>/dev/null || true
    rm -f "$dir/garage.pid"
  fi
  ;;
*)
  echo "usage: garage.sh start|stop DIR" >&2
  exit 2
  ;;
esac
