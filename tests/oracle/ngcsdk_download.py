"""NVIDIA's own client (PyPI ngcsdk, pinned in scripts/python/ngcsdk-requirements.txt) against
the clara-emulator: configure, info, list files and download each asset given.

Usage: python ngcsdk_download.py OUT_DIR TARGET...      (TARGET: model:org/team/name:version
                                                            or resource:org/name:version)
Environment: NGC_CLI_API_URL / NGC_CLI_AUTH_URL (the emulator), REQUESTS_CA_BUNDLE /
SSL_CERT_FILE (its CA), NGC_CLI_HOME (a scratch dir), ORACLE_NGC_KEY (empty = guest),
ORACLE_NGC_ORG (org to configure with a key).

Prints one JSON document on stdout:
{"key_kind", "assets": [{"target", "info_status", "listed": {path: {"size", "sha256_base64"}},
                         "downloaded": {path: {"size", "sha256_hex"}}, "status"}]}
"""

import hashlib
import json
import os
import sys

from ngcsdk import Client


def sha256_hex(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    out_dir, targets = sys.argv[1], sys.argv[2:]
    key = os.environ.get("ORACLE_NGC_KEY", "")
    client = Client()
    if key:
        client.configure(api_key=key, org_name=os.environ.get("ORACLE_NGC_ORG") or None)
    else:
        client.configure()
    report = {"key_kind": ("nvapi" if key.startswith("nvapi-") else "legacy") if key else "guest", "assets": []}
    for spec in targets:
        kind, target = spec.split(":", 1)
        api = client.registry.model if kind == "model" else client.registry.resource
        info = api.info(target)
        version = info.modelVersion if kind == "model" else info.recipeVersion
        listed = {
            f.path: {"size": f.sizeInBytes, "sha256_base64": getattr(f, "sha256_base64", None)}
            for f in api.list_files(target)
        }
        dest = os.path.join(out_dir, kind, target.replace("/", "_").replace(":", "_"))
        os.makedirs(dest, exist_ok=True)
        result = api.download_version(target, destination=dest)
        root = result.path
        downloaded = {}
        for base, _dirs, files in os.walk(root):
            for name in files:
                full = os.path.join(base, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                downloaded[rel] = {"size": os.path.getsize(full), "sha256_hex": sha256_hex(full)}
        report["assets"].append(
            {
                "target": target,
                "kind": kind,
                "info_status": version.status,
                "listed": listed,
                "downloaded": downloaded,
                "status": result.status,
                "completed_count": result.completed_count,
            }
        )
    json.dump(report, sys.stdout, indent=1, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
