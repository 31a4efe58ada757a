#!/usr/bin/env bash
# Offline checks of the Helm chart under helm/codexcontinue:
#
#   1. `helm lint` (the Helm SDK from a pinned wheel; no helm binary, no cluster);
#   2. renders for a matrix of values (defaults, each optional part, each cloud example),
#      every manifest validated against the Kubernetes 1.30 schemas in strict mode, and the
#      deployment rules asserted in helm/tests/check_chart.py; values that must be refused
#      (a misspelt key, for one) must fail to render;
#   3. checkov over all renders (each skipped rule is justified on its resource in the chart).
#
# The tools live in .dev/helm-venv, installed on first use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.dev/helm-venv"
TOOLS=("helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0" "checkov==3.3.30")

log() { printf 'check-helm: %s\n' "$*" >&2; }
die() { printf 'check-helm: error: %s\n' "$*" >&2; exit 1; }

# shellcheck source=lib/pip-env.sh
source "$ROOT/scripts/lib/pip-env.sh"

start=$SECONDS
pip_env "$VENV" "${TOOLS[@]}"

# The checks print their problems on stderr; stdout is the one-line summary.
summary="$(PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" "$ROOT/helm/tests/check_chart.py")" || die "chart checks failed (see above)"
printf 'helm: chart checks passed (%s) in %d s\n' "$summary" "$((SECONDS - start))"
