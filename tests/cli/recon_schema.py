"""recon_schema.py: validate JSON documents against the W3C reconciliation
API 0.2 JSON Schemas (../shared/data/reconciliation-schemas/0.2/schemas).

The schemas refer to each other by relative name (type.json), so every
schema of the folder is registered by its $id.  Works with jsonschema 4.18+
(the `referencing` registry) and with Debian 12's python3-jsonschema 4.10
(RefResolver with a store)."""
import glob
import json
import os

import jsonschema


def validator(schema_dir, name):
    """A Draft 7 validator for schema `name` (file name without .json)."""
    schemas = {}
    for f in glob.glob(os.path.join(schema_dir, "*.json")):
        s = json.load(open(f))
        if "$id" in s:
            schemas[s["$id"]] = s
    schema = json.load(open(os.path.join(schema_dir, name + ".json")))
    try:
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7
        registry = Registry().with_resources(
            [(i, Resource.from_contents(s, default_specification=DRAFT7)) for i, s in schemas.items()])
        return jsonschema.Draft7Validator(schema, registry=registry)
    except ImportError:
        resolver = jsonschema.RefResolver(schema.get("$id", ""), schema, store=schemas)
        return jsonschema.Draft7Validator(schema, resolver=resolver)


def validate(schema_dir, name, doc):
    """Raise jsonschema.ValidationError naming the schema when doc fails."""
    validator(schema_dir, name).validate(doc)
