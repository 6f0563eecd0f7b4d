#!/usr/bin/env python3
"""Walks a Tessera server's IIIF collections from the root down and validates every collection
and manifest against the IIIF Presentation 3.0 JSON schema (the official validator's own
schema, with the validator class it uses: Draft 7). Also checks that the schema rejects a
manifest we broke on purpose, so a schema that accepts anything cannot pass the test.

Usage: presentation_schema.py SCHEMA BASE_URL MIN_MANIFESTS
"""
import copy
import json
import sys
import urllib.request

import jsonschema


def fetch(url):
    req = urllib.request.Request(url, headers={"Accept": "application/ld+json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        if res.status != 200:
            raise RuntimeError(f"{url}: HTTP {res.status}")
        return json.load(res)


def problems(validator, doc):
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
            for e in validator.iter_errors(doc)]


def main():
    schema_path, base, min_manifests = sys.argv[1], sys.argv[2].rstrip("/"), int(sys.argv[3])
    with open(schema_path) as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(schema)
    seen, queue, failed = set(), [base + "/collection"], 0
    counts = {"Collection": 0, "Manifest": 0}
    first_manifest = None
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        doc = fetch(url)
        kind = doc.get("type")
        counts[kind] = counts.get(kind, 0) + 1
        errs = problems(validator, doc)
        if errs:
            failed += 1
            print(f"not ok - {kind} {url}")
            for e in errs[:20]:
                print(f"    {e}")
        else:
            print(f"ok - {kind} {url}")
        if kind == "Manifest" and first_manifest is None:
            first_manifest = doc
        if kind == "Collection":
            queue.extend(item["id"] for item in doc.get("items", [])
                         if item.get("type") in ("Collection", "Manifest"))
    if counts["Manifest"] < min_manifests:
        print(f"not ok - walked {counts['Manifest']} manifests, wanted at least {min_manifests}")
        failed += 1
    # The schema must be able to say no: free-text rights and a canvas without size parts.
    if first_manifest is not None:
        broken = copy.deepcopy(first_manifest)
        broken["rights"] = "All rights reserved"
        broken["items"][0]["width"] = -5
        if not problems(validator, broken):
            print("not ok - the schema accepted a manifest with free-text rights and width -5")
            failed += 1
        else:
            print("ok - the schema refuses a manifest broken on purpose")
    print(f"{counts['Collection']} collections, {counts['Manifest']} manifests, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
