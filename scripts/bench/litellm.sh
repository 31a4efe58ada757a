#!/usr/bin/env bash
# Installs the LiteLLM proxy (the peer of the OpenAI-compatible API benchmark) into
# .dev/litellm-venv from a pinned PyPI release, once, and prints its executable's path.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.dev/litellm-venv"
pin="litellm[proxy]==1.80.0"

if [[ ! -f "$venv/.pin" || "$(cat "$venv/.pin")" != "$pin" ]]; then
  echo "bench: installing $pin" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$pin"
  echo "$pin" > "$venv/.pin"
fi
printf '%s\n' "$venv/bin/litellm"
