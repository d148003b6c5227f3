"""On-disk cache of TF -> ONNX conversions, keyed by model source, revision and quantisation.

Layout: ``<root>/<slug>-<digest>/`` is an ONNX model folder (see ``onnx_export``) plus ``manifest.json``, which records
the key and the size and sha256 of every file. An entry is built in a private temporary folder and renamed into place
in one step, so readers see a complete entry or none. An entry whose manifest or checksums do not match is removed and
built again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the export changes in a way that makes old entries wrong
MANIFEST = "manifest.json"
QUANTIZATIONS = ("fp32", "int8")
_STALE_BUILD_SECONDS = 3600

# (tf_dir, out_dir, quantization) -> writes an ONNX model folder into out_dir
Converter = Callable[[Path, Path, str], None]


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What a conversion depends on. ``source`` is ``hub:owner/name`` or ``path:/abs/folder``."""

    source: str
    revision: str  # a hub revision, or a fingerprint of a local folder's files
    quantization: str  # "fp32" | "int8"

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, not {self.quantization!r}")

    @property
    def folder_name(self) -> str:
        payload = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True).encode()
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.source.split(":", 1)[-1].strip("/").split("/")[-1])[:40]
        return f"{slug}-{self.quantization}-{hashlib.sha256(payload).hexdigest()[:16]}"


def default_converter(tf_dir: Path, out_dir: Path, quantization: str) -> None:
    """Export ``tf_dir`` with tf2onnx (imports TensorFlow), keeping only the graph of the asked quantisation."""
    from bot.core.backends.onnx_export import export_folder

    export_folder(tf_dir, out_dir, fp32=quantization == "fp32", int8=quantization == "int8")


def folder_fingerprint(folder: Path) -> str:
    """A cheap fingerprint of a local model folder: names, sizes and modification times of its files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return "files-" + digest.hexdigest()[:16]


class OnnxCache:
    """Converted models under ``root``; ``converter`` is called only when no valid entry exists."""

    def __init__(self, root: Path, *, converter: Converter = default_converter) -> None:
        self.root = Path(root)
        self._converter = converter

    def path(self, key: CacheKey) -> Path:
        return self.root / key.folder_name

    def lookup(self, key: CacheKey) -> Path | None:
        """The entry's folder if it exists and is intact; a damaged entry is removed and None returned."""
        entry = self.path(key)
        if not entry.exists():
            return None
        problem = _check_entry(entry, key)
        if problem is None:
            return entry
        log.warning("ONNX cache entry %s is damaged (%s): rebuilding it", entry, problem)
        self.evict(key)
        return None

    def get_or_build(self, key: CacheKey, tf_dir: Callable[[], Path]) -> Path:
        """Return a valid entry for ``key``, converting ``tf_dir()`` (called only on a miss) when there is none."""
        entry = self.lookup(key)
        if entry is not None:
            return entry
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_builds()
        building = self.root / f".building-{key.folder_name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        building.mkdir()
        try:
            started = time.perf_counter()
            self._converter(Path(tf_dir()), building, key.quantization)
            _write_manifest(building, key)
            log.info("converted %s to ONNX %s in %.1fs", key.source, key.quantization, time.perf_counter() - started)
            return self._publish(building, key)
        finally:
            shutil.rmtree(building, ignore_errors=True)

    def evict(self, key: CacheKey) -> None:
        """Remove the entry for ``key`` if present (renamed away first, so no reader sees half a folder)."""
        entry = self.path(key)
        trash = self.root / f".trash-{uuid.uuid4().hex[:8]}"
        try:
            entry.rename(trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def _publish(self, building: Path, key: CacheKey) -> Path:
        entry = self.path(key)
        for _ in range(3):
            try:
                building.rename(entry)
                return entry
            except OSError:  # another process published first: keep theirs if it is intact
                if entry.exists() and _check_entry(entry, key) is None:
                    return entry
                self.evict(key)
        raise OSError(f"could not publish the ONNX cache entry {entry}")

    def _remove_stale_builds(self) -> None:
        cutoff = time.time() - _STALE_BUILD_SECONDS
        for leftover in [*self.root.glob(".building-*"), *self.root.glob(".trash-*")]:
            try:
                if leftover.stat().st_mtime < cutoff:
                    shutil.rmtree(leftover, ignore_errors=True)
            except FileNotFoundError:
                pass


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(folder: Path, key: CacheKey) -> None:
    files = {
        path.name: {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST
    }
    if not any(name.endswith(".onnx") for name in files):
        raise OSError(f"the converter wrote no .onnx file into {folder}")
    manifest = {"format": CACHE_FORMAT, "key": asdict(key), "files": files, "created": time.time()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _check_entry(entry: Path, key: CacheKey) -> str | None:
    """None if ``entry`` matches its manifest and ``key``, else what is wrong."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        files = manifest["files"]
        if manifest.get("format") != CACHE_FORMAT or manifest.get("key") != asdict(key):
            return "manifest is for another key or format"
        for name, expected in files.items():
            path = entry / name
            if not path.is_file() or path.stat().st_size != expected["size"]:
                return f"{name} is missing or has the wrong size"
            if _sha256(path) != expected["sha256"]:
                return f"{name} has the wrong checksum"
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return f"unreadable manifest: {error}"
    return None
