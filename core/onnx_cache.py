"""The ONNX int8 (and OpenVINO int8) export of a model, made on first use and cached by content.

On a CPU without AMX the ``auto`` backends serve an int8 export: OpenVINO's on AVX-512 VNNI,
ONNX Runtime's elsewhere (bench/README.md, "CPU engines and where the time goes"). No one should have to run an export command
for that: the first process that needs the export makes it, with the same checks as
``rrs encoder export-onnx`` / ``rrs rerank export-onnx`` (a model whose export fails them is
refused with their message), into ``<RRS_HOME>/onnx/<kind>-<hash of its files>``.
Every later process (each gunicorn worker, the next ingest) loads it from there; a changed
model has another hash, so a stale export is never served. A folder that already carries
its own export (made by those commands) is served as it is.

Example::

    folder = bi_encoder_export("all-MiniLM-L6-v2", settings)   # exports once, then cached
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from rrsearch.core.errors import RerankerUnavailable
from rrsearch.core.model_names import resolve_model_path
from rrsearch.core.onnx_models import read_encoder_card

log = logging.getLogger("rrs.models")

# Files that do not change what a model computes: its exports, our records beside it.
NOT_THE_MODEL = ("onnx", "rrs_rerank.json", "rrs_encoder.json", "training.json", "README.md")


def content_fingerprint(folder: Path, skip: tuple[str, ...] = NOT_THE_MODEL) -> str:
    """A hash of every file of a model folder (names and bytes) that makes up the model (all
    but ``skip``: for an export folder, whose model is its ``onnx/``, nothing is skipped)."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.relative_to(folder).parts[0] not in skip and "checkpoint-" not in str(path)
    )
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def export_folder(kind: str, source: Path, home: Path) -> Path:
    """Where ``source``'s export is cached: by content, so a copy elsewhere is the same model."""
    return home / "onnx" / f"{kind}-{content_fingerprint(Path(source))}"


def cached_export(
    kind: str,
    source: Path,
    home: Path,
    served_file: str,
    export: Callable[[Path, Path], object],
    target: Path | None = None,
) -> Path:
    """The cache folder holding ``served_file`` for ``source`` (``target``, else by its content),
    exporting into it once.

    Processes that start together (gunicorn workers) wait on one lock file and the first one
    exports; a half-written export is never seen (written aside, then renamed)."""
    target = target or export_folder(kind, source, home)
    cache = target.parent
    cache.mkdir(parents=True, exist_ok=True)
    if (target / served_file).is_file():
        return target
    with open(cache / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / served_file).is_file():  # another process made it while we waited
            return target
        partial = cache / f"{target.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        log.warning("Exporting %s %s to %s for this CPU (once; cached in %s)", kind, source, served_file, target)
        try:
            export(source, partial)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    return target


def forget_export(kind: str, source: Path, home: Path) -> bool:
    """Remove ``source``'s cached export (and its lock file), for a model that is itself about
    to be deleted (a cross-fit fold's); whether there was one."""
    target = export_folder(kind, source, home)
    existed = target.is_dir()
    for folder in (target, target.parent / f"openvino-{target.name}"):  # and the OpenVINO export made from it
        shutil.rmtree(folder, ignore_errors=True)
        (folder.parent / f"{folder.name}.lock").unlink(missing_ok=True)
    return existed


def bi_encoder_export(name_or_path: str, settings, engine: str = "onnx") -> Path:
    """The folder an ``auto`` bi-encoder is served from on a CPU by ``engine`` ('onnx' or
    'openvino'; looked up once per process: the fingerprint reads every byte of the model)."""
    folder = _bi_encoder_export(name_or_path, settings.home, settings.bi_encoder_onnx_file)
    return openvino_export("bi-encoder", folder, settings.home) if engine == "openvino" else folder


def openvino_export(kind: str, onnx_folder: Path, home: Path) -> Path:
    """The OpenVINO int8 export of an ONNX export folder (its ``onnx/model.onnx``), made once:
    ``openvino-`` and the cached ONNX export's name (which holds the model's hash), or for a
    folder that carries its own export, its whole content's hash."""
    from rrsearch.core.openvino_models import OPENVINO_FILE, export_openvino_int8

    cache = home / "onnx"
    in_cache = onnx_folder.parent.resolve() == cache.resolve()
    name = onnx_folder.name if in_cache else f"{kind}-{content_fingerprint(onnx_folder, skip=())}"
    target = cache / f"openvino-{name}"
    return cached_export(
        kind, onnx_folder, home, OPENVINO_FILE, lambda src, out: export_openvino_int8(src, out, kind), target
    )


@lru_cache(maxsize=4)
def _bi_encoder_export(name_or_path: str, home: Path, onnx_file: str) -> Path:
    from rrsearch.core.encoder_export import export_bi_encoder

    source = Path(resolve_model_path(name_or_path))
    if read_encoder_card(source) is not None and (source / onnx_file).is_file():
        return source  # an export made by `rrs encoder export-onnx`
    if not source.is_dir():
        source = _local_snapshot(name_or_path)
    return cached_export(
        "bi-encoder", source, home, onnx_file, lambda _folder, out: export_bi_encoder(name_or_path, out)
    )  # the name: its card keeps the label


def cross_encoder_export(name_or_path: str, settings, *, may_download: bool, engine: str = "onnx") -> Path:
    """The folder an ``auto`` cross-encoder is served from on a CPU by ``engine`` ('onnx' or 'openvino')."""
    folder = _cross_encoder_onnx(name_or_path, settings, may_download=may_download)
    return openvino_export("cross-encoder", folder, settings.home) if engine == "openvino" else folder


def _cross_encoder_onnx(name_or_path: str, settings, *, may_download: bool) -> Path:
    from rrsearch.core.onnx_export import export_onnx

    source = Path(name_or_path)
    if (source / settings.rerank_onnx_file).is_file():
        return source  # an export made by `rrs rerank export-onnx`
    if not source.is_dir():
        try:
            source = _local_snapshot(name_or_path, may_download=may_download)
        except FileNotFoundError as exc:
            raise RerankerUnavailable(
                f"cannot load cross-encoder {name_or_path!r}: {exc} (set RRS_CROSS_ENCODER to a local model "
                f"folder, e.g. one made by `rrs train-reranker`)"
            ) from exc
    return cached_export(
        "cross-encoder",
        source,
        settings.home,
        settings.rerank_onnx_file,
        lambda folder, out: export_onnx(folder, output=out),
    )


def _local_snapshot(name: str, *, may_download: bool = True) -> Path:
    """A hub model's files on disk (the hub cache; downloaded first when allowed)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name, local_files_only=not may_download))
    except Exception as exc:  # offline, unknown name, no cached copy: one meaning here
        raise FileNotFoundError(f"no local copy of {name!r} ({type(exc).__name__})") from exc
