"""Parse every .tf file under a directory and check what `terraform validate` would catch
without provider downloads, plus the project's own rules.

    python parse_all.py terraform

Checks, per Terraform directory (a module or an example):
  * every file parses as HCL2;
  * a `terraform` block pins `required_version` and every provider the resources use
    (source and version constraint); modules keep it in versions.tf;
  * every variable has a description and a type; names that hold secrets (ending in
    password, token, secret or key) are `sensitive = true`, for variables and outputs;
  * every `var.X` / `local.X` reference is declared, and every variable is used;
  * module calls pass only declared inputs, all required ones, and read declared outputs;
  * every example calls the app module and one cloud module;
  * the TLS-only settings of each cloud module (and Azure's vector allow-list) are in place.
Exits non-zero with one line per problem.
"""

import os
import re
import sys
from pathlib import Path

import hcl2
from hcl2.utils import SerializationOptions

OPTIONS = SerializationOptions(with_comments=False, strip_string_quotes=True, explicit_blocks=False)
SECRET_NAME = re.compile(r"(^|_)(password|token|secret|key)$")
META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}
CLOUD_MODULES = {"aws", "gcp", "azure"}

# (module, resource type, path, expected value): what makes each connection TLS-only, and
# the vector allow-list Flexible Server needs. A path step is an attribute or block name,
# or (name, key, value) to pick one repeated block.
TLS_SETTINGS = [
    ("aws", "aws_db_parameter_group", [("parameter", "name", "rds.force_ssl"), "value"], "1"),
    ("aws", "aws_elasticache_replication_group", ["transit_encryption_enabled"], True),
    ("aws", "aws_elasticache_replication_group", ["transit_encryption_mode"], "required"),
    ("gcp", "google_sql_database_instance", ["settings", "ip_configuration", "ssl_mode"], "ENCRYPTED_ONLY"),
    ("gcp", "google_redis_cluster", ["transit_encryption_mode"], "TRANSIT_ENCRYPTION_MODE_SERVER_AUTHENTICATION"),
    ("azure", "azurerm_postgresql_flexible_server_configuration", ["for_each", "require_secure_transport"], "on"),
    ("azure", "azurerm_postgresql_flexible_server_configuration", ["for_each", "azure.extensions"], "VECTOR"),
    ("azure", "azurerm_managed_redis", ["default_database", "client_protocol"], "Encrypted"),
]

problems = []


def problem(where, message):
    problems.append(f"{os.path.relpath(where)}: {message}")


def blocks(doc, kind):
    """The labelled blocks of one kind as (label, body) pairs, e.g. variables."""
    for entry in doc.get(kind, []):
        yield from entry.items()


def resources(doc, kind="resource"):
    for rtype, named in blocks(doc, kind):
        for name, body in named.items():
            yield rtype, name, body


def lookup(body, path):
    """Follow a path (see TLS_SETTINGS) through nested blocks; None where it leads nowhere."""
    for step in path:
        if isinstance(body, list):
            body = body[0] if body else None
        if not isinstance(body, dict):
            return None
        if isinstance(step, tuple):
            name, key, value = step
            body = next((b for b in body.get(name, []) if b.get(key) == value), None)
        else:
            body = body.get(step)
    return body


class Directory:
    """One Terraform directory: its parsed files merged, and its raw text for references."""

    _loaded = {}

    @classmethod
    def load(cls, path):
        """Each directory is parsed once, however many examples call it."""
        path = Path(path).resolve()
        if path not in cls._loaded:
            cls._loaded[path] = cls(path)
        return cls._loaded[path]

    def __init__(self, path):
        self.path = path
        self.files = {}
        for file in sorted(path.glob("*.tf")):
            try:
                self.files[file.name] = hcl2.load(file.open(), serialization_options=OPTIONS)
            except Exception as err:  # the parser raises several types
                problem(file, f"does not parse: {str(err).splitlines()[0]}")
        self.text = "\n".join(f.read_text() for f in sorted(path.glob("*.tf")))

    def all(self, kind):
        for doc in self.files.values():
            yield from blocks(doc, kind)

    def variables(self):
        return dict(self.all("variable"))

    def outputs(self):
        return dict(self.all("output"))


def check_versions(d, is_module):
    found = [(name, doc["terraform"][0]) for name, doc in d.files.items() if "terraform" in doc]
    if not found:
        problem(d.path, "no terraform block with required_version and required_providers")
        return
    name, block = found[0]
    if is_module and name != "versions.tf":
        problem(d.path / name, "keep the terraform block in versions.tf")
    if not block.get("required_version"):
        problem(d.path / name, "required_version missing")
    providers = {}
    for entry in block.get("required_providers", []):
        providers.update(entry)
    for provider, spec in providers.items():
        if not isinstance(spec, dict) or not spec.get("source") or not spec.get("version"):
            problem(d.path / name, f"provider {provider} needs a source and a version constraint")
    used = {rtype.split("_")[0] for doc in d.files.values() for kind in ("resource", "data")
            for rtype, _, _ in resources(doc, kind)}
    for provider in sorted(used - set(providers)):
        problem(d.path / name, f"resources use provider {provider}, which required_providers does not list")


def check_declarations(d):
    variables = d.variables()
    for name, body in variables.items():
        for field in ("description", "type"):
            if not body.get(field):
                problem(d.path, f"variable {name} has no {field}")
    for kind, declared in (("variable", variables), ("output", d.outputs())):
        for name, body in declared.items():
            if SECRET_NAME.search(name) and body.get("sensitive") is not True:
                problem(d.path, f"{kind} {name} holds a secret: mark it sensitive = true")
    referenced = set(re.findall(r"\bvar\.(\w+)", d.text))
    for name in sorted(referenced - set(variables)):
        problem(d.path, f"var.{name} is not declared")
    for name in sorted(set(variables) - referenced):
        problem(d.path, f"variable {name} is never used")
    local_names = {k for doc in d.files.values() for entry in doc.get("locals", []) for k in entry}
    for name in sorted(set(re.findall(r"\blocal\.(\w+)", d.text)) - local_names):
        problem(d.path, f"local.{name} is not declared")


def check_module_calls(d, root):
    calls = dict(d.all("module"))
    for name, body in calls.items():
        target = (d.path / body.get("source", "")).resolve()
        if not target.is_dir() or root.resolve() not in target.parents:
            problem(d.path, f"module {name}: source {body.get('source')} is not a directory here")
            continue
        callee = Directory.load(target)
        inputs = callee.variables()
        passed = set(body) - META_ARGS
        for arg in sorted(passed - set(inputs)):
            problem(d.path, f"module {name} has no input {arg}")
        for arg in sorted(k for k, v in inputs.items() if "default" not in v and k not in passed):
            problem(d.path, f"module {name} needs input {arg}")
        outputs = callee.outputs()
        for out in sorted(set(re.findall(rf"\bmodule\.{name}\.(\w+)", d.text)) - set(outputs)):
            problem(d.path, f"module {name} has no output {out}")
    for out in sorted({m for m in re.findall(r"\bmodule\.(\w+)\.", d.text)} - set(calls)):
        problem(d.path, f"module.{out} is not declared")
    return {Path(body.get("source", "")).name for body in calls.values()}


def check_tls(d, cloud):
    for module, rtype, path, expected in TLS_SETTINGS:
        if module != cloud:
            continue
        bodies = [body for doc in d.files.values() for t, _, body in resources(doc) if t == rtype]
        if not bodies:
            problem(d.path, f"no {rtype}")
        for body in bodies:
            actual = lookup(body, path)
            if actual != expected:
                where = ".".join(s if isinstance(s, str) else f"{s[0]}[{s[2]}]" for s in path)
                problem(d.path, f"{rtype} {where} is {actual!r}, expected {expected!r}")


def main(root):
    root = Path(root)
    tf_dirs = sorted({f.parent for f in root.rglob("*.tf") if ".terraform" not in f.parts})
    for path in tf_dirs:
        d = Directory.load(path)
        is_module = path.parent.name == "modules"
        check_versions(d, is_module)
        check_declarations(d)
        called = check_module_calls(d, root)
        if path.parent.name == "examples":
            if "app" not in called or not called & CLOUD_MODULES:
                problem(path, "an example calls the app module and one cloud module")
        if is_module and path.name in CLOUD_MODULES:
            check_tls(d, path.name)
    for module in sorted(CLOUD_MODULES | {"app"}):
        if not (root / "modules" / module).is_dir():
            problem(root, f"modules/{module} is missing")
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} problem(s) in {root}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "terraform"))
