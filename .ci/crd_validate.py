#!/usr/bin/env python3
"""Offline checks kubernetes-validate cannot do, because they involve our CRD.

  crd_validate.py same-crd CRD_FILE RENDERED_CHART
      The CustomResourceDefinition in the rendered chart equals CRD_FILE, except for the
      annotations and labels the chart adds (helm.sh/resource-policy, part-of).
  crd_validate.py gateway-objects MANIFEST...
      Prints every Gateway API object (gateway.networking.k8s.io) of the manifests as a JSON
      line {"file", "object"}, for .ci/gateway_validate.mjs.
  crd_validate.py custom-resources CRD_FILE MANIFEST...
      Every AhltEnvironment in the manifests is valid against the CRD's openAPIV3Schema,
      strictly: an unknown field is an error (the API server would silently prune it).
"""

import copy
import sys

import jsonschema
import yaml


def load_all(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def strict(schema):
    """OpenAPI v3 (structural, as in a CRD) to JSON Schema that rejects unknown fields."""
    if not isinstance(schema, dict):
        return schema
    s = {k: strict(v) if isinstance(v, dict) else v for k, v in schema.items()}
    for key in ("properties",):
        if key in s:
            s[key] = {k: strict(v) for k, v in s[key].items()}
    if "items" in s:
        s["items"] = strict(s["items"])
    if isinstance(s.get("additionalProperties"), dict):
        s["additionalProperties"] = strict(s["additionalProperties"])
    for key in ("allOf", "anyOf", "oneOf"):
        if key in s:
            s[key] = [strict(x) for x in s[key]]
    if s.pop("x-kubernetes-int-or-string", False):
        s.pop("type", None)
        s["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.pop("nullable", False) and "type" in s:
        s["type"] = [s["type"], "null"]
    preserve = s.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in s and "additionalProperties" not in s and not preserve:
        s["additionalProperties"] = False
    for key in [k for k in s if k.startswith("x-kubernetes-")]:
        del s[key]
    return s


def crd_schemas(crd_path):
    crd = load_all(crd_path)[0]
    kind = crd["spec"]["names"]["kind"]
    group = crd["spec"]["group"]
    return {
        (f"{group}/{v['name']}", kind): strict(v["schema"]["openAPIV3Schema"])
        for v in crd["spec"]["versions"]
    }


def custom_resources(crd_path, manifests):
    schemas = crd_schemas(crd_path)
    kinds = {kind for (_, kind) in schemas}
    failures = checked = 0
    for path in manifests:
        for doc in load_all(path):
            if doc.get("kind") not in kinds:
                continue
            name = f"{path}: {doc['kind']}/{doc.get('metadata', {}).get('name')}"
            schema = schemas.get((doc.get("apiVersion"), doc["kind"]))
            if schema is None:
                print(f"FAIL {name}: apiVersion {doc.get('apiVersion')} not served by the CRD")
                failures += 1
                continue
            body = copy.deepcopy(doc)
            meta = body.pop("metadata", {}) or {}
            schema = dict(schema)
            schema["properties"] = dict(schema.get("properties", {}))
            schema["properties"].pop("metadata", None)
            schema["properties"].setdefault("apiVersion", {"type": "string"})
            schema["properties"].setdefault("kind", {"type": "string"})
            errors = sorted(
                jsonschema.Draft7Validator(schema).iter_errors(body), key=lambda e: list(e.path)
            )
            if not meta.get("name") or not meta.get("namespace"):
                errors.append("metadata.name and metadata.namespace are required")
            for e in errors:
                where = ".".join(str(p) for p in getattr(e, "path", [])) or "<root>"
                print(f"FAIL {name}: {where}: {getattr(e, 'message', e)}")
            failures += bool(errors)
            checked += 1
            if not errors:
                print(f"ok   {name}")
    if checked == 0:
        print("FAIL no custom resource found")
        return 1
    return 1 if failures else 0


def same_crd(crd_path, rendered_path):
    expected = load_all(crd_path)[0]
    crds = [d for d in load_all(rendered_path) if d.get("kind") == "CustomResourceDefinition"]
    if len(crds) != 1:
        print(f"FAIL {rendered_path}: expected one CustomResourceDefinition, found {len(crds)}")
        return 1
    actual = copy.deepcopy(crds[0])
    meta = actual["metadata"]
    annotations = meta.pop("annotations", {}) or {}
    labels = meta.pop("labels", {}) or {}
    extra = set(annotations) - {"helm.sh/resource-policy"} | set(labels) - {"app.kubernetes.io/part-of"}
    expected_meta = expected.get("metadata", {})
    if extra or expected_meta.get("annotations") or expected_meta.get("labels"):
        print(f"FAIL unexpected CRD metadata: {sorted(extra)} / {expected_meta}")
        return 1
    if actual != expected:
        print(f"FAIL the chart's CRD differs from {crd_path}")
        return 1
    print(f"ok   the chart renders {crd_path} (plus resource-policy and part-of)")
    return 0


def gateway_objects(paths):
    import json

    for path in paths:
        for doc in load_all(path):
            if str(doc.get("apiVersion", "")).startswith("gateway.networking.k8s.io/"):
                print(json.dumps({"file": path, "object": doc}))
    return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "gateway-objects":
        return gateway_objects(argv[2:])
    if len(argv) >= 4 and argv[1] == "same-crd":
        return same_crd(argv[2], argv[3])
    if len(argv) >= 4 and argv[1] == "custom-resources":
        return custom_resources(argv[2], argv[3:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
