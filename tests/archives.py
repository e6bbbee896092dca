"""Making tenant archives for the tests, and re-making them altered (hostile, older, foreign)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable

from tenants.archive import write_archive
from tenants.models import Tenant


def export_bytes(tenant_id: str) -> bytes:
    out = io.BytesIO()
    write_archive(Tenant.objects.select_related("plan").get(pk=tenant_id), out)
    return out.getvalue()


def members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(member.name, tar.extractfile(member).read()) for member in tar.getmembers()]


def pack(entries: list[tuple[str, bytes]], extra: Callable[[tarfile.TarFile], None] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
        if extra is not None:
            extra(tar)
    return out.getvalue()


def rebuild(
    data: bytes,
    *,
    manifest: Callable[[dict], None] | None = None,
    table: tuple[str, Callable[[bytes], bytes]] | None = None,
    fix_checksums: bool = True,
    extra: Callable[[tarfile.TarFile], None] | None = None,
) -> bytes:
    """The archive with its manifest and one table's file changed; checksums recomputed unless told not to."""
    entries = dict(members(data))
    document = json.loads(entries["manifest.json"])
    if table is not None:
        name, change = table
        path = f"tables/{name}.jsonl"
        entries[path] = change(entries[path])
        if fix_checksums:
            for entry in document["tables"]:
                if entry["name"] == name:
                    content = entries[path]
                    entry["sha256"] = hashlib.sha256(content).hexdigest()
                    entry["bytes"] = len(content)
                    entry["rows"] = content.count(b"\n")
    if manifest is not None:
        manifest(document)
    entries["manifest.json"] = json.dumps(document).encode()
    ordered = ["manifest.json", "registry.json"] + [name for name in entries if name.startswith("tables/")]
    return pack([(name, entries[name]) for name in ordered if name in entries], extra)


def gzip_of(content: bytes) -> bytes:
    return gzip.compress(content)
