"""What a correct render of the CodexContinue chart looks like, asserted object by object.

Each check takes the rendered objects (and the effective values they came from) and reports
every rule broken through a `Problems` collector, naming the object at fault, so one run
shows all that is wrong. `check_render` runs them all.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Iterator

Manifest = dict[str, Any]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
UID = 10001  # the image's user
GPU = "nvidia.com/gpu"


class Problems:
    """Collects failures of one check run, each tied to the render and object at fault."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.where = ""

    def __call__(self, ok: bool, message: str) -> None:
        if not ok:
            self.items.append(f"[{self.where}] {message}")


def ident(doc: Manifest) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def pod_spec(doc: Manifest) -> dict[str, Any] | None:
    kind = doc.get("kind")
    if kind == "Pod":
        return doc["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    if kind in WORKLOADS:
        return doc["spec"]["template"]["spec"]
    return None


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers") or []
    yield from spec.get("containers") or []


def secrets_of(spec: dict[str, Any]) -> set[str]:
    """Names of every Secret a pod spec reads (env, envFrom, volumes, projected volumes)."""
    names: set[str] = set()
    for c in containers(spec):
        for env in c.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("secretKeyRef")
            if ref:
                names.add(ref["name"])
        for src in c.get("envFrom") or []:
            if src.get("secretRef"):
                names.add(src["secretRef"]["name"])
    for vol in spec.get("volumes") or []:
        if vol.get("secret"):
            names.add(vol["secret"]["secretName"])
        for src in (vol.get("projected") or {}).get("sources") or []:
            if src.get("secret"):
                names.add(src["secret"]["name"])
    return names


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env") or [] if "value" in e}


def seconds(text: str) -> int:
    """A duration the server reads ("10s", "2m", "1h"), in whole seconds."""
    match = re.fullmatch(r"(\d+)(s|m|h)", text)
    if not match:
        raise ValueError(f"duration {text!r} is not <n>s|m|h")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[match.group(2)]


def role_of(container: dict[str, Any]) -> str:
    args = container.get("args") or []
    if "--role" in args:
        return args[args.index("--role") + 1]
    return env_of(container).get("CODEXCONTINUE_SERVER__ROLE", "all")


def check_security(docs: list[Manifest], check: Problems) -> None:
    """Every pod and every container runs locked down, with no API token."""
    want_pod = {"runAsNonRoot": True, "runAsUser": UID}
    want_container = {"runAsNonRoot": True, "runAsUser": UID, "allowPrivilegeEscalation": False,
                      "readOnlyRootFilesystem": True}
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            check(doc.get("automountServiceAccountToken") is False,
                  f"{ident(doc)}: automountServiceAccountToken must be false")
        spec = pod_spec(doc)
        if spec is None:
            continue
        check(spec.get("automountServiceAccountToken") is False,
              f"{ident(doc)}: pod automountServiceAccountToken must be false")
        ctx = spec.get("securityContext") or {}
        for key, value in want_pod.items():
            check(ctx.get(key) == value, f"{ident(doc)}: pod securityContext.{key} must be {value}")
        check((ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
              f"{ident(doc)}: pod seccompProfile must be RuntimeDefault")
        for c in containers(spec):
            where = f"{ident(doc)} container {c.get('name')}"
            ctx = c.get("securityContext") or {}
            for key, value in want_container.items():
                check(ctx.get(key) == value, f"{where}: securityContext.{key} must be {value}")
            check("ALL" in ((ctx.get("capabilities") or {}).get("drop") or []),
                  f"{where}: securityContext.capabilities.drop must contain ALL")
            check((ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault",
                  f"{where}: securityContext.seccompProfile must be RuntimeDefault")
            check(bool((c.get("resources") or {}).get("requests")), f"{where}: needs resource requests")


def check_secrets(docs: list[Manifest], values: dict[str, Any], check: Problems) -> None:
    """The migration hook reads only the owner secret; serving pods never read it."""
    app_secret = values["existingSecret"]["name"]
    owner = values["migrations"]["existingSecret"]
    jobs = [d for d in docs if d["kind"] == "Job"]
    want = 1 if values["migrations"]["enabled"] else 0
    check(len(jobs) == want, f"expected {want} migration Job(s), found {len(jobs)}")
    for job in jobs:
        hooks = set(job["metadata"].get("annotations", {}).get("helm.sh/hook", "").split(","))
        check({"pre-install", "pre-upgrade"} <= hooks,
              f"{ident(job)}: must be a pre-install,pre-upgrade hook (has {sorted(hooks)})")
        spec = pod_spec(job)
        check(secrets_of(spec) == {owner["name"]},
              f"{ident(job)}: must read only the owner secret {owner['name']!r}, reads {sorted(secrets_of(spec))}")
        for c in containers(spec):
            refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in c.get("env") or []
                    if (e.get("valueFrom") or {}).get("secretKeyRef")}
            check(refs.get("DATABASE_URL") == {"name": owner["name"], "key": owner["key"]},
                  f"{ident(job)}: DATABASE_URL must come from {owner['name']}/{owner['key']}")
    for doc in docs:
        if doc["kind"] in WORKLOADS - {"Job"}:
            read = secrets_of(pod_spec(doc))
            check(owner["name"] not in read,
                  f"{ident(doc)}: a serving pod reads the owner secret {owner['name']!r}")
            check(app_secret in read, f"{ident(doc)}: does not read the app secret {app_secret!r}")


def check_serving(docs: list[Manifest], values: dict[str, Any], check: Problems) -> None:
    """Shutdown timing, probes, roles and GPU requests of the Deployments."""
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
                   for d in docs if d["kind"] == "Deployment"}
    expect = {"api"} | {c for c in ("worker", "gpu") if values[c]["enabled"]}
    check(set(deployments) == expect, f"Deployments {sorted(deployments)}, expected {sorted(expect)}")
    services = [d for d in docs if d["kind"] == "Service"]
    for component, doc in deployments.items():
        spec = pod_spec(doc)
        main = next(c for c in spec["containers"] if c["name"] == "codexcontinue")
        env = env_of(main)
        where = ident(doc)
        ports = {p["name"]: p["containerPort"] for p in main.get("ports") or []}
        check("grpc" in ports, f"{where}: needs a container port named grpc")
        port = ports.get("grpc")

        # Shutdown: the kubelet must not kill calls the server is still draining.
        pre_stop = ((main.get("lifecycle") or {}).get("preStop") or {})
        pre_stop_s = (pre_stop.get("sleep") or {}).get("seconds", 0)
        try:
            drain = seconds(env["CODEXCONTINUE_SERVER__DRAIN_DELAY"])
            grace = seconds(env["CODEXCONTINUE_SERVER__SHUTDOWN_GRACE"])
        except (KeyError, ValueError) as err:
            check(False, f"{where}: drain delay and shutdown grace must be set as durations ({err})")
            drain = grace = 0
        tgps = spec.get("terminationGracePeriodSeconds", 30)
        check(tgps > pre_stop_s + drain + grace,
              f"{where}: terminationGracePeriodSeconds {tgps} must exceed preStop {pre_stop_s} "
              f"+ drain {drain} + grace {grace}")

        # Probes: gRPC health decides readiness (and start-up); /healthz only liveness.
        readiness = main.get("readinessProbe") or {}
        check((readiness.get("grpc") or {}).get("port") == port,
              f"{where}: readinessProbe must be grpc on the service port {port}")
        startup = main.get("startupProbe") or {}
        check(bool(startup.get("grpc") or startup.get("httpGet", {}).get("path") == "/readyz"),
              f"{where}: startupProbe must wait for gRPC health or /readyz")
        check((main.get("livenessProbe") or {}).get("httpGet", {}).get("path") == "/healthz",
              f"{where}: livenessProbe must be GET /healthz")
        check(env.get("CODEXCONTINUE_SERVER__LISTEN", "").endswith(f":{port}"),
              f"{where}: CODEXCONTINUE_SERVER__LISTEN must use the container port {port}")

        # Roles: API work and background work are split only when the worker is on.
        role = role_of(main)
        if component == "worker":
            check(role == "worker", f"{where}: worker pods must run role worker, not {role}")
        else:
            want = "api" if values["worker"]["enabled"] else "all"
            check(role == want, f"{where}: must run role {want} (worker Deployment "
                                f"{'on' if values['worker']['enabled'] else 'off'}), not {role}")

        if component == "gpu":
            limits = (main.get("resources") or {}).get("limits") or {}
            check(int(limits.get(GPU, 0)) >= 1, f"{where}: must request {GPU} in its limits")
            check(env.get("CODEXCONTINUE_INFERENCE__DEVICE") == "cuda", f"{where}: must set device cuda")
            check(main["image"].endswith("-cuda") or "@sha256:" in main["image"],
                  f"{where}: image {main['image']} is not the CUDA variant")
        else:
            check(GPU not in ((main.get("resources") or {}).get("limits") or {}),
                  f"{where}: only the GPU Deployment may request {GPU}")

        labels = doc["spec"]["template"]["metadata"]["labels"]
        selected = [s for s in services if s["spec"]["selector"].items() <= labels.items()]
        check(len(selected) == 1, f"{where}: selected by {len(selected)} Services, expected 1")
        for svc in selected:
            svc_ports = {p["name"]: p for p in svc["spec"]["ports"]}
            check("grpc" in svc_ports and svc_ports["grpc"]["targetPort"] in ("grpc", port),
                  f"{ident(svc)}: needs port grpc targeting the container's grpc port")
        if component != "worker":
            check(any(s["metadata"]["labels"].get("app.kubernetes.io/component") == "api" for s in selected),
                  f"{where}: must be behind the API Service")


def check_references(docs: list[Manifest], values: dict[str, Any], check: Problems) -> None:
    """HPAs, PDBs and the NetworkPolicy point at what was rendered; checkov skips say why."""
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for doc in docs:
        kind = doc["kind"]
        if kind == "HorizontalPodAutoscaler":
            target = doc["spec"]["scaleTargetRef"]["name"]
            check(target in deployments, f"{ident(doc)}: targets missing Deployment {target}")
            check("replicas" not in deployments.get(target, {}).get("spec", {}),
                  f"{ident(doc)}: Deployment {target} sets replicas, fighting the autoscaler")
        if kind == "PodDisruptionBudget":
            sel = doc["spec"]["selector"]["matchLabels"]
            check(any(sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                      for d in deployments.values()), f"{ident(doc)}: selects no Deployment's pods")
        if kind == "NetworkPolicy":
            spec = doc["spec"]
            check(set(spec.get("policyTypes", [])) == {"Ingress", "Egress"},
                  f"{ident(doc)}: must restrict both ingress and egress")
            dns = {(p.get("protocol"), p.get("port")) for rule in spec.get("egress", [])
                   for p in rule.get("ports", [])}
            check({("UDP", 53), ("TCP", 53)} <= dns, f"{ident(doc)}: must allow DNS on 53 UDP and TCP")
            sel = spec["podSelector"]["matchLabels"]
            check(all(sel.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                      for d in deployments.values()), f"{ident(doc)}: does not cover every Deployment")
            peers = [p for rule in spec.get("ingress", []) for p in rule.get("from", [])]
            check(all(p for p in peers), f"{ident(doc)}: an empty ingress peer admits everything")
        for key, text in (doc["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                check(bool(re.fullmatch(r"CKV2?_K8S_\d+=[^=]{20,}", text)),
                      f"{ident(doc)}: {key} must be CKV_K8S_n=<reason> (a real reason, no '=')")
    if values["networkPolicy"]["enabled"]:
        check(any(d["kind"] == "NetworkPolicy" for d in docs), "networkPolicy.enabled rendered no NetworkPolicy")
    if values["serviceMonitor"]["enabled"]:
        check(any(d["kind"] == "ServiceMonitor" for d in docs), "serviceMonitor.enabled rendered no ServiceMonitor")


def check_render(docs: list[Manifest], values: dict[str, Any], check: Problems) -> None:
    """Every rule above, on one render; a manifest of unexpected shape is a failure too."""
    steps: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (check_security, (docs, check)),
        (check_secrets, (docs, values, check)),
        (check_serving, (docs, values, check)),
        (check_references, (docs, values, check)),
    ]
    for step, args in steps:
        try:
            step(*args)
        except (KeyError, TypeError, StopIteration, ValueError) as err:
            check(False, f"unexpected shape in {step.__name__}: {err!r}")
