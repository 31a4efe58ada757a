#!/usr/bin/env bash
# Prepares the slim libtorch tree the server links against (crate tch 0.26 needs PyTorch
# 2.13.0 exactly) in .dev/libtorch, once, and prints its path.
#
# PyPI has no CPU-only libtorch, so the tree is cut from the PyTorch wheel without
# installing it: the headers and the CPU libraries, plus the two CUDA runtime libraries
# libtorch_cpu.so loads even on CPU (from NVIDIA's wheels). GPU hosts install the full
# `torch==2.13.0` wheel instead and point LIBTORCH at it (see the README).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.dev/libtorch"
torch=2.13.0
cudart=13.0.96
cupti=13.0.85
want="torch-$torch cuda-runtime-$cudart cuda-cupti-$cupti"

if [[ -f "$dest/.version" && "$(cat "$dest/.version")" == "$want" ]]; then
  echo "$dest"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "libtorch: fetching PyTorch $torch wheels (about 540 MB)" >&2
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --dest "$tmp" "torch==$torch" "nvidia-cuda-runtime==$cudart" "nvidia-cuda-cupti==$cupti" >&2

rm -rf "$dest.partial"
mkdir -p "$dest.partial/lib"
python3 - "$tmp" "$dest.partial" <<'PY'
import pathlib, shutil, sys, zipfile

wheels, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
libraries = {"libtorch_cpu.so", "libtorch.so", "libc10.so", "libgomp.so.1",
             "libcudart.so.13", "libcupti.so.13"}
found = set()
for wheel in wheels.glob("*.whl"):
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            name = member.rsplit("/", 1)[-1]
            if member.startswith("torch/include/") and not member.endswith("/"):
                target = out / "include" / member[len("torch/include/"):]
            elif "/lib/" in member and name in libraries:
                target = out / "lib" / name
                found.add(name)
            else:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
missing = libraries - found
if missing:
    sys.exit(f"libtorch: the wheels lack {sorted(missing)}")
PY
echo "$want" > "$dest.partial/.version"
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "libtorch: ready in $dest" >&2
echo "$dest"
