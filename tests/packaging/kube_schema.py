"""A strict decoder of Kubernetes objects, offline, over the API schema that the
Kubernetes Python client (Debian python3-kubernetes) is generated from.

Every generated model class carries `openapi_types` (attribute -> type: a model
name, `list[T]`, `dict(str, T)`, `str`, `int`, `bool`, `object`, ...) and
`attribute_map` (attribute -> JSON field name). decode() walks a parsed YAML
document down that graph and reports, each with its path:
  - a field the type does not have (the API server's strict field validation,
    `kubectl apply --validate=strict`);
  - a value of the wrong type (a string where an int or bool is wanted, a map
    where a list is, an unquoted `true` where a label value must be a string);
  - a required field missing: the models' own setters refuse None for them
    (client-side validation), so each object is also built as its model.
`object` in this client is IntOrString (ports, maxUnavailable) or free JSON
(managedFields' fieldsV1); quantities (resources) are strings, ints or floats.

What it cannot know: the checks the API server makes beyond the schema (name
formats, cross-field rules, admission); check_kubernetes.py adds the few that
matter here. The schema is the client's release (22.6: Kubernetes 1.22): a
field added later is "unknown" to it.
"""
import re

from kubernetes import client

SCALARS = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (str,),
    "date": (str,),
}
# Fields typed `object` that hold free JSON rather than an IntOrString.
FREE_JSON = {("V1ManagedFieldsEntry", "fields_v1")}
# Maps of resource quantities: "64Mi", 1, 0.5.
QUANTITY_MAPS = {("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests")}


def _is(value, types):
    # bool is an int in Python; neither may stand for the other here.
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


class Decoder:
    def __init__(self):
        self.errors = []

    def error(self, path, message):
        self.errors.append(f"{path}: {message}")

    def decode(self, typ, value, path, owner=None):
        """The value as an instance of the client's type, or None (errors noted)."""
        if value is None:
            return None  # an explicit null is "unset", as the API server reads it
        m = re.fullmatch(r"list\[(.+)\]", typ)
        if m:
            if not isinstance(value, list):
                self.error(path, f"is a {type(value).__name__}, expected a list of {m.group(1)}")
                return None
            return [self.decode(m.group(1), v, f"{path}[{i}]") for i, v in enumerate(value)]
        m = re.fullmatch(r"dict\(str, (.+)\)", typ)
        if m:
            if not isinstance(value, dict):
                self.error(path, f"is a {type(value).__name__}, expected a map of {m.group(1)}")
                return None
            inner = m.group(1)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    self.error(path, f"key {k!r} is not a string")
                if owner in QUANTITY_MAPS:
                    if not _is(v, (str, int, float)):
                        self.error(f"{path}.{k}", f"is a {type(v).__name__}, expected a quantity")
                    out[k] = v
                else:
                    out[k] = self.decode(inner, v, f"{path}.{k}")
            return out
        if typ == "object":
            if owner in FREE_JSON:
                return value
            if not _is(value, (int, str)):
                self.error(path, f"is a {type(value).__name__}, expected an int or a string (IntOrString)")
                return None
            return value
        if typ in SCALARS:
            if not _is(value, SCALARS[typ]):
                self.error(path, f"is a {type(value).__name__} ({value!r}), expected {typ}")
                return None
            return value
        return self.decode_model(typ, value, path)

    def decode_model(self, typ, value, path):
        cls = getattr(client, typ, None)
        if cls is None:
            self.error(path, f"the schema has no type {typ}")
            return None
        if not isinstance(value, dict):
            self.error(path, f"is a {type(value).__name__}, expected an object ({typ})")
            return None
        by_json = {j: a for a, j in cls.attribute_map.items()}
        kwargs = {}
        for key, v in value.items():
            attr = by_json.get(key)
            if attr is None:
                self.error(f"{path}.{key}", f"unknown field (not in {typ})")
                continue
            kwargs[attr] = self.decode(cls.openapi_types[attr], v, f"{path}.{key}", (typ, attr))
        try:
            return cls(**kwargs)
        except ValueError as e:  # the model's setters: required fields, enums
            self.error(path, f"{typ}: {e}")
            return None


def api_of(api_version, kind):
    """(model class name, namespaced) for an apiVersion and kind the client's API
    serves, or an error string: the group/version's API class must have a create
    method for the kind (create_namespaced_daemon_set, create_namespace...)."""
    group, _, version = api_version.rpartition("/")
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", kind).lower()
    group = group.removesuffix(".k8s.io")
    api_name = "Core" if not group else "".join(p.capitalize() for p in group.split("."))
    api_name += version.capitalize() + "Api"
    api = getattr(client, api_name, None)
    if api is None:
        return f"apiVersion {api_version}: no such API group/version ({api_name}) in the schema"
    model = version.capitalize() + kind
    if getattr(client, model, None) is None:
        return f"kind {kind}: no model {model} in the schema"
    if hasattr(api, f"create_namespaced_{snake}"):
        return model, True
    if hasattr(api, f"create_{snake}"):
        return model, False
    return f"{api_version} does not serve kind {kind}"


def decode_object(doc, where):
    """Errors of one manifest document (a list, empty when it decodes strictly)."""
    d = Decoder()
    if not isinstance(doc, dict):
        return [f"{where}: not a map"]
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [f"{where}: apiVersion and kind must be strings"]
    found = api_of(api_version, kind)
    if isinstance(found, str):
        return [f"{where}: {found}"]
    model, namespaced = found
    d.decode(model, doc, f"{where} {kind}")
    meta = doc.get("metadata") or {}
    if not isinstance(meta, dict) or not meta.get("name"):
        d.error(f"{where} {kind}", "metadata.name is required")
    elif namespaced and not meta.get("namespace"):
        d.error(f"{where} {kind} {meta['name']}", "metadata.namespace: give it (namespaced kind)")
    return d.errors
