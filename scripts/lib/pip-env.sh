# Sourced by the project's scripts: `pip_env DIR PACKAGE...` makes DIR a Python venv with
# exactly these pinned packages, installing only when the pins changed (a stamp file keyed
# on them). Needs ROOT (for shorter messages) and a `log` function.

pip_env() {
  local dir="$1"; shift
  if [[ ! -x "$dir/bin/python" ]]; then
    log "creating Python environment ${dir#$ROOT/}"
    python3 -m venv "$dir"
  fi
  local stamp="$dir/.installed-$(printf '%s\n' "$@" | sha256sum | cut -c1-16)"
  if [[ ! -f "$stamp" ]]; then
    log "installing $*"
    "$dir/bin/pip" install -q --disable-pip-version-check "$@"
    touch "$stamp"
  fi
}
