#!/usr/bin/env python3
"""Baselines for clara-bench's transfer section (see bench/README.md).

Run by clara-bench with the bench venv's interpreter (.tools/bench-venv, set up by
bench/run.sh from bench/requirements.txt), one process per measurement so that
`ru_maxrss` is that measurement's own peak. Prints one JSON object on stdout.

  old-way   What azureml-ngc-tools did (cli/ngccontent.py, see
            shared/reference/ngc-and-storage.md §3): urllib.request.urlopen of the NGC
            `/zip` URL (redirects followed by urllib), read in blocks of
            max(4096, length // 100) into a local file, zipfile.ZipFile(...).extractall(),
            then one upload_blob(overwrite=False) per extracted file, sequentially
            (azureml-sdk v1's AzureBlobDatastore.upload with overwrite=False), through
            BlobServiceClient.from_connection_string. --validate-content adds a
            Content-MD5 to every block (see VALIDATE_HELP).

  ceiling   What the machine can do with the same bytes, in two sequential stages like the
            provider's pipeline: a plain streaming download to /dev/null (curl, else urllib)
            of the asset's file URLs, then the Python SDK's parallel upload
            (upload_blob(..., max_concurrency=N)) of the same files, already on disk.

Environment: SSL_CERT_FILE (the emulator's CA; OpenSSL's default verify paths honour it,
so urllib and curl trust the emulator), AZURITE_CONNECTION_STRING.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile


def peak_rss_kib():
    # Linux: ru_maxrss is in KiB. This process only (not curl).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_s():
    # This process and its waited-for children (curl), user + system.
    r = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(x.ru_utime + x.ru_stime for x in r)


def container_client(container):
    from azure.storage.blob import BlobServiceClient

    conn = os.environ["AZURITE_CONNECTION_STRING"]
    service = BlobServiceClient.from_connection_string(conn)
    cc = service.get_container_client(container)
    if not cc.exists():
        cc.create_container()
    return cc


def files_under(root):
    out = []
    for dirpath, _dirs, names in os.walk(root):
        for n in names:
            p = os.path.join(dirpath, n)
            out.append((os.path.relpath(p, root).replace(os.sep, "/"), p))
    out.sort()
    return out


def old_way(a):
    t0 = time.monotonic()
    os.makedirs(a.work, exist_ok=True)
    zip_path = os.path.join(a.work, "asset.zip")
    extract_dir = os.path.join(a.work, "additional_content")

    # 1. Download, as ngccontent.py did: urlopen, read blocks of max(4096, length // 100).
    # The toolkit took `length` from Content-Length (and crashed on chunked /zip answers,
    # which have none); it is passed in here so the block size is the toolkit's.
    with urllib.request.urlopen(a.url) as resp:
        length = resp.getheader("content-length")
        length = int(length) if length else a.expected_bytes
        block = max(4096, length // 100)
        downloaded = 0
        with open(zip_path, "wb") as f:
            while True:
                buf = resp.read(block)
                if not buf:
                    break
                f.write(buf)
                downloaded += len(buf)
    t1 = time.monotonic()

    # 2. Extract.
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(extract_dir)
    t2 = time.monotonic()

    # 3. Upload every file, one after the other, overwrite=False.
    cc = container_client(a.container)
    uploaded = 0
    files = files_under(extract_dir)
    for rel, path in files:
        with open(path, "rb") as f:
            cc.upload_blob(
                name=f"{a.prefix}/{rel}",
                data=f,
                overwrite=False,
                validate_content=a.validate_content,
            )
        uploaded += os.path.getsize(path)
    t3 = time.monotonic()

    return {
        "method": "old-way",
        "download_s": t1 - t0,
        "extract_s": t2 - t1,
        "upload_s": t3 - t2,
        "total_s": t3 - t0,
        "downloaded_bytes": downloaded,
        "uploaded_bytes": uploaded,
        "files": len(files),
        "read_block": block,
        "validate_content": a.validate_content,
        "extract_dir": extract_dir,
        "peak_rss_kib": peak_rss_kib(),
        "cpu_s": cpu_s(),
    }


def stream_to_null(urls, parallel):
    """Seconds and bytes to fetch `urls` into nothing."""
    curl = shutil.which("curl")
    t0 = time.monotonic()
    if curl:
        cmd = [curl, "-sS", "-f", "-L", "-w", "%{size_download}\\n"]
        if len(urls) > 1:
            cmd += ["-Z", "--parallel-max", str(parallel)]
        for u in urls:
            cmd += ["-o", "/dev/null", u]
        ca = os.environ.get("SSL_CERT_FILE")
        if ca:
            cmd += ["--cacert", ca]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        n = sum(int(x) for x in out.split())
        return time.monotonic() - t0, n, "curl"
    n = 0
    for u in urls:
        with urllib.request.urlopen(u) as resp:
            while True:
                buf = resp.read(1 << 20)
                if not buf:
                    break
                n += len(buf)
    return time.monotonic() - t0, n, "urllib"


def ceiling(a):
    dl_s, dl_bytes, tool = stream_to_null(a.url, a.parallel)
    cc = container_client(a.container)
    files = files_under(a.files_dir)
    t0 = time.monotonic()
    uploaded = 0
    for rel, path in files:
        with open(path, "rb") as f:
            cc.upload_blob(
                name=f"{a.prefix}/{rel}",
                data=f,
                overwrite=False,
                max_concurrency=a.concurrency,
                validate_content=a.validate_content,
            )
        uploaded += os.path.getsize(path)
    up_s = time.monotonic() - t0
    return {
        "method": "ceiling",
        "download_s": dl_s,
        "download_tool": tool,
        "upload_s": up_s,
        "total_s": dl_s + up_s,
        "downloaded_bytes": dl_bytes,
        "uploaded_bytes": uploaded,
        "files": len(files),
        "upload_concurrency": a.concurrency,
        "validate_content": a.validate_content,
        "peak_rss_kib": peak_rss_kib(),
        "cpu_s": cpu_s(),
    }


VALIDATE_HELP = (
    "upload_blob(validate_content=True): a Content-MD5 on every Put Block, as the provider "
    "sends. Azurite (3.3x) computes a CRC64 in JavaScript for each block that has none, "
    "which costs it ~3x the CPU per byte; Azure does not charge for that."
)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("old-way")
    o.add_argument("--url", required=True, help="the NGC /zip URL")
    o.add_argument("--expected-bytes", type=int, required=True, help="asset size (for the read block size)")
    o.add_argument("--work", required=True, help="directory for the zip and the extracted files")
    o.add_argument("--container", required=True)
    o.add_argument("--prefix", required=True)
    o.add_argument("--validate-content", action="store_true", help=VALIDATE_HELP)
    c = sub.add_parser("ceiling")
    c.add_argument("--url", action="append", required=True, help="a file URL (repeatable)")
    c.add_argument("--parallel", type=int, default=4, help="concurrent downloads when several URLs")
    c.add_argument("--files-dir", required=True, help="the files to upload")
    c.add_argument("--concurrency", type=int, default=8)
    c.add_argument("--container", required=True)
    c.add_argument("--prefix", required=True)
    c.add_argument("--validate-content", action="store_true", help=VALIDATE_HELP)
    a = p.parse_args()
    try:
        result = old_way(a) if a.cmd == "old-way" else ceiling(a)
    except Exception as e:  # reported to clara-bench, which prints it
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
