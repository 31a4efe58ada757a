"""Offline checks of the CodexContinue Helm chart (run by scripts/check-helm.sh).

The chart is linted, then rendered for a matrix of values (defaults, each optional part
switched on, each cloud example). Every render is checked three ways:

1. every manifest against the Kubernetes 1.30 schemas in strict mode (unknown fields fail);
2. the deployment rules the server relies on, asserted in rules.py (security context,
   secrets kept apart, shutdown timing, probes, roles, GPU);
3. checkov over all renders at once, where each finding the chart does not follow is
   skipped on the resource itself with its reason.

Values that must be refused (a misspelt key, a secret in the config file, a grace period
shorter than the drain) are rendered too, and must fail.

On success prints one summary ("N renders, M manifests") on stdout; on failure prints
every problem on stderr and exits 1.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import yaml

from rules import Manifest, Problems, check_render, ident

HERE = Path(__file__).resolve().parent
CHART = HERE.parent / "codexcontinue"
EXAMPLES = CHART / "examples"
RELEASE, NAMESPACE = "cc", "codexcontinue"
KUBE_VERSION = "1.30.0"
# Custom resources have no schema among Kubernetes' own; only these kinds are let through.
NO_SCHEMA = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# Database and Redis addresses every render with the NetworkPolicy on needs.
NETPOL = {
    "networkPolicy": {
        "enabled": True,
        "egress": {"postgres": {"cidrs": ["10.0.0.0/24"]}, "redis": {"cidrs": ["10.0.1.0/24"]}},
    }
}


def merged(*parts: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of value overlays, later ones winning (as `-f a -f b` does)."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = merged(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def matrix() -> list[tuple[str, dict[str, Any]]]:
    """The renders to check: name and user values."""
    renders = [
        ("defaults", {}),
        ("hpa+networkpolicy", merged(NETPOL, {
            "api": {"autoscaling": {"enabled": True, "customMetric": {"name": "grpc_server_handled_per_second"}}},
            "ingress": {"enabled": True, "className": "nginx"},
        })),
        ("worker+gpu", {"worker": {"enabled": True, "autoscaling": {"enabled": True}},
                        "gpu": {"enabled": True, "autoscaling": {"enabled": True}}}),
        ("servicemonitor", merged(NETPOL, {"serviceMonitor": {"enabled": True}, "worker": {"enabled": True},
                                           "migrations": {"enabled": False}})),
        ("config+pinned", {
            "config": {"audit": {"min_retention_days": 365}, "rate_limit": {"per_tenant_per_second": 200.0}},
            "image": {"digest": "sha256:" + "a" * 64, "pullPolicy": "Always"},
            "gpu": {"enabled": True, "image": {"digest": "sha256:" + "b" * 64}},
            "inference": {"modelsClaim": "codexcontinue-models"},
            "server": {"shutdown": {"preStopSeconds": 0, "terminationGracePeriodSeconds": 90}},
            "migrations": {"enabled": True},
            "serviceAccount": {"create": False, "name": "codexcontinue"},
        }),
    ]
    for path in sorted(EXAMPLES.glob("values-*.yaml")):
        renders.append((f"example {path.name}", yaml.safe_load(path.read_text()) or {}))
    return renders


# Values that must not render, and a piece of the error each must give.
MUST_FAIL = [
    ("misspelt key", {"api": {"replica": 3}}, "replica"),
    ("misspelt top-level key", {"wokrer": {"enabled": True}}, "wokrer"),
    ("secret in the config file", {"config": {"database": {"url": "postgres://x"}}}, "/config/database"),
    ("secret variable in env", {"env": [{"name": "DATABASE_URL", "value": "postgres://x"}]}, "/env/0/name"),
    ("grace shorter than the drain", {"server": {"shutdown": {"terminationGracePeriodSeconds": 40}}},
     "must exceed"),
    ("owner secret shared with the app",
     {"migrations": {"existingSecret": {"name": "codexcontinue"}}}, "must differ"),
    ("NetworkPolicy without a database", {"networkPolicy": {"enabled": True}}, "postgres.cidrs"),
]


def render(chart: helm.Chart, values: dict[str, Any]) -> list[Manifest]:
    """Rendered objects of the chart (hooks included), in template order."""
    out = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[Manifest] = []
    for path in sorted(out):
        if path.endswith((".yaml", ".yml")):
            docs.extend(d for d in yaml.safe_load_all(out[path]) if d)
    return docs


def check_schemas(docs: list[Manifest], check: Problems) -> None:
    """Each object against the Kubernetes schemas (strict); only listed CRDs are exempt."""
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) in NO_SCHEMA:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path)
            check(False, f"{ident(doc)}: Kubernetes {KUBE_VERSION} schema: {path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            check(False, f"{ident(doc)}: {err.message} (add it to NO_SCHEMA only if it is a CRD)")


def self_test(docs: list[Manifest], check: Problems) -> None:
    """The schema validation really is strict: an unknown field must be refused."""
    doc = copy.deepcopy(next(d for d in docs if d["kind"] == "Deployment"))
    doc["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    try:
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        check(False, "strict schema validation accepted an unknown field (securityContex)")
    except kubernetes_validate.ValidationError:
        pass


def run_checkov(rendered: dict[str, list[Manifest]], check: Problems) -> None:
    """One checkov run over every render; skips are annotations in the chart."""
    venv_bin = Path(sys.executable).parent
    with tempfile.TemporaryDirectory(prefix="check-helm-") as tmp:
        for name, docs in rendered.items():
            folder = Path(tmp) / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
            folder.mkdir()
            for n, doc in enumerate(docs):
                (folder / f"{n:02d}-{doc['kind'].lower()}.yaml").write_text(yaml.safe_dump(doc))
        env = dict(os.environ, HOME=str(venv_bin.parent))  # checkov's caches stay in the venv
        proc = subprocess.run(
            [str(venv_bin / "checkov"), "--skip-download", "--framework", "kubernetes", "-d", tmp,
             "--compact", "--quiet"],
            capture_output=True, text=True, env=env)
    check.where = "checkov"
    check(proc.returncode == 0, "findings (fix them, or skip one on its resource with a reason):\n"
          + proc.stdout + proc.stderr)


def main() -> int:
    check = Problems()
    check.where = "helm lint"
    report = helm.lint(CHART, strict=True, kube_version=f"v{KUBE_VERSION}")
    for message in report["messages"]:
        check(message["severity"] < 2, f"{message['path']}: {message['error']}")

    chart = helm.Chart.load(CHART)
    rendered: dict[str, list[Manifest]] = {}
    for name, values in matrix():
        check.where = name
        try:
            docs = render(chart, values)
        except helm.HelmError as err:
            check(False, f"does not render: {err}")
            continue
        effective = chart.merge_values(values)
        rendered[name] = docs
        check_schemas(docs, check)
        check_render(docs, effective, check)
    if rendered:
        check.where = "self-test"
        self_test(next(iter(rendered.values())), check)

    for name, values, expected in MUST_FAIL:
        check.where = f"must fail: {name}"
        try:
            render(chart, values)
            check(False, f"rendered, but these values must be refused: {values}")
        except helm.HelmError as err:
            check(expected in str(err), f"refused for another reason than {expected!r}: {err}")

    run_checkov(rendered, check)

    if check.items:
        print(f"helm chart checks: {len(check.items)} problem(s)", file=sys.stderr)
        for item in check.items:
            print(f"  - {item}", file=sys.stderr)
        return 1
    manifests = sum(len(d) for d in rendered.values())
    print(f"{len(rendered)} renders, {manifests} manifests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
