"""The VCF service: a genetic counsellor's upload, interpreted in a worker process.

`start_upload` checks the role and the size, keeps the upload in a private temporary file,
reads its header (so a bad file or an unknown sample is refused at once), audits the upload
with the sample and file names pseudonymised, and hands the interpretation to a worker
process; the returned `VcfJob` is polled for progress (the Streamlit script thread never
parses the file). The worker first decompresses once to count lines (for progress) and to stop
gzip bombs at the uncompressed-size cap, then interprets, then writes the annotated VCF, and
always deletes the upload. The worker loads the workspace's models once (the teacher's genomic
encoder with its variant probe, the student); the page's process never loads them.
`interpret_upload` does all of it and waits.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pickle
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from core.data.cohort_io import CASES_FILE, load_cases
from core.errors import CmkdError, InputError
from core.genomics.interpret import DEFAULT_PANEL_MB, Interpreter, VcfReport, interpret_file
from core.genomics.reader import open_vcf
from core.genomics.records import VcfError
from core.io import write_atomic
from core.knowledge.tables import KnowledgeBase
from workbench.commands.train import STUDENT_RUN, TEACHER_RUN
from workbench.errors import PermissionDenied
from workbench.roles import User, require
from workbench.store import Store, pseudonym
from workbench.workspace import Workspace, workspace_salt

FOLDER_PREFIX = "cmkd-vcf-"  # private temporary folder per upload
STALE_AFTER_S = 24 * 3600  # job folders older than this are deleted at the next upload
UPLOAD_NAME = "upload"  # the private copy's name; messages show the user's file name instead
ANNOTATED_NAME = "annotated.vcf.gz"
PROGRESS_NAME = "progress.json"
_CHUNK = 1 << 20
_PROGRESS_EVERY_S = 0.25  # how often the worker rewrites its progress file
_LINE_RE = re.compile(r": line (\d+): ")
PROBE_RUN = "variant_probe"  # models/<name> of the genomic encoder's variant probe
# Tumour types offered as examples, one held-out (test-split) cohort case each.
EXAMPLE_TYPES: tuple[str, ...] = ("SKCM", "LUAD", "BRCA", "COAD", "GBM", "PAAD")


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int = 200 * 1024 * 1024  # upload size; Streamlit's default maxUploadSize
    uncompressed_factor: int = 20  # decompressed content at most this many times max_bytes

    @property
    def max_uncompressed_bytes(self) -> int:
        return self.max_bytes * self.uncompressed_factor


@dataclass(frozen=True)
class Samples:
    """The sample picker's choices: every sample, the detected tumour and normal."""

    names: tuple[str, ...]
    tumor: str  # "" when not detected
    normal: str  # "" when not detected

    @property
    def default(self) -> str:
        """What the reader interprets when no sample is chosen."""
        return self.tumor or (self.names[0] if self.names else "")


@dataclass(frozen=True)
class JobProgress:
    records: int  # alleles read so far
    fraction: float | None  # of the file's lines; None when unknown (BCF)


def tumor_types() -> dict[str, str]:
    """TCGA code -> OncoTree name, for the tumour type picker."""
    return {t.tcga_code: t.name for t in _interpreter().kb.oncotree_types}


@dataclass(frozen=True)
class ExampleVcf:
    """A demo-cohort case's VCF to try the page without a file of one's own."""

    case_id: str
    tumor_type: str
    drivers: tuple[str, ...]  # genes with a driver event, as the cohort recorded them
    path: Path

    @property
    def filename(self) -> str:
        return self.path.name


def example_vcfs(ws: Workspace) -> tuple[ExampleVcf, ...]:
    """For each type of EXAMPLE_TYPES, the first test-split case (by id) with driver events and
    a VCF; () when the workspace has no cohort. Synthetic cases: no patient data."""
    if not (ws.cohort_dir / CASES_FILE).exists():
        return ()
    chosen: dict[str, ExampleVcf] = {}
    for case in sorted(load_cases(ws.cohort_dir), key=lambda c: c.case_id):
        wanted = case.cancer_type in EXAMPLE_TYPES and case.cancer_type not in chosen
        if wanted and case.split == "test" and case.vcf_path and case.drivers:
            chosen[case.cancer_type] = ExampleVcf(
                case.case_id, case.cancer_type, case.drivers, ws.cohort_dir / case.vcf_path
            )
    return tuple(chosen[t] for t in EXAMPLE_TYPES if t in chosen)


def list_samples(path: Path) -> Samples:
    """Samples of a VCF/BCF with the detected tumour and normal (VcfError if unreadable)."""
    with open_vcf(Path(path)) as reader:
        h = reader.header
        return Samples(h.samples, h.tumor_sample, h.normal_sample)


def _check_size(data: bytes, filename: str, limits: UploadLimits) -> None:
    if len(data) > limits.max_bytes:
        raise InputError(
            f"{filename}: {len(data)} bytes is over the upload limit of {limits.max_bytes} bytes"
        )
    if not data:
        raise InputError(f"{filename}: empty file")


def _sweep_stale_jobs() -> None:
    """Delete job folders older than STALE_AFTER_S: a page keeps its last job's folder for the
    downloads, and an abandoned session never cleans it up."""
    cutoff = time.time() - STALE_AFTER_S
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        try:
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue  # removed meanwhile, or someone else's


def _private_copy(data: bytes) -> Path:
    """`data` in a new private folder (0700) as a 0600 file."""
    folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    path = folder / UPLOAD_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _renamed(exc: InputError, path: Path, filename: str) -> InputError:
    """The same error with the private copy's path replaced by the user's file name."""
    return type(exc)(str(exc).replace(str(path), filename))


def upload_samples(data: bytes, filename: str, limits: UploadLimits | None = None) -> Samples:
    """`list_samples` of uploaded bytes (size-checked; the private copy is deleted after)."""
    _check_size(data, filename, limits or UploadLimits())
    path = _private_copy(data)
    try:
        return list_samples(path)
    except InputError as exc:
        raise _renamed(exc, path, filename) from None
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)


# ------------------------------------------------------------------------------ worker


def _count_lines(path: Path, limit: int) -> int:
    """Lines of the decompressed text (0 for BCF), stopping at `limit` decompressed bytes.

    Reads gzip members one after another (BGZF is many small members) so that memory stays
    at one chunk; a plain file is measured by its size alone.
    """
    with open(path, "rb") as f:
        head = f.read(4)
        if head[:2] != b"\x1f\x8b":
            if path.stat().st_size > limit:
                raise VcfError(f"{path}: file is larger than {limit} bytes")
            f.seek(0)
            return 0 if head == b"BCF\2" else sum(chunk.count(b"\n") for chunk in iter(
                lambda: f.read(_CHUNK), b""))  # fmt: skip
        f.seek(0)
        total = lines = 0
        inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        first = b""
        try:
            while chunk := f.read(_CHUNK):
                while chunk:
                    out = inflate.decompress(chunk, _CHUNK)
                    chunk = inflate.unconsumed_tail or inflate.unused_data
                    if inflate.eof:
                        inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    first = first or out[:4]
                    total += len(out)
                    lines += out.count(b"\n")
                    if total > limit:
                        raise VcfError(f"{path}: file expands beyond {limit} bytes")
        except zlib.error as exc:
            raise VcfError(f"{path}: corrupt or truncated gzip data ({exc})") from exc
    return 0 if first == b"BCF\2" else lines


JOB_NAME = "job.json"  # the worker's instructions
REPORT_NAME = "report.pickle"  # its result, HMAC-signed; written and read only by this module
JOB_KEY_ENV = "CMKD_VCF_JOB_KEY"  # per-job secret the worker signs its report with
_MAC_BYTES = 32
ERROR_NAME = "error.json"  # or its refusal of the file
LOG_NAME = "worker.log"  # its stderr, for an internal failure
_ERRORS: dict[str, type[InputError]] = {"VcfError": VcfError, "InputError": InputError}
_REPO = Path(__file__).resolve().parents[1]


@cache  # one knowledge base per process
def _interpreter() -> Interpreter:
    """Rules only: for the page's checks (tumour types), which need no model."""
    return Interpreter(KnowledgeBase.load())


def model_interpreter(models_dir: Path) -> Interpreter:
    """Rules plus whatever models `models_dir` holds (the hooks say what is missing)."""
    from core.genomics.models import load_models  # torch: only where the models are used

    models = load_models(models_dir / TEACHER_RUN, models_dir / STUDENT_RUN,
                         models_dir / PROBE_RUN)  # fmt: skip
    return models.interpreter(_interpreter().kb)


def _run_job(folder: Path) -> None:
    """In the worker process: interpret `folder`/upload as `folder`/job.json says, writing
    progress, then the report (and annotated VCF) or the refusal. Always deletes the upload."""
    spec = json.loads((folder / JOB_NAME).read_text(encoding="utf-8"))
    path = folder / UPLOAD_NAME
    last = [0.0]

    def progress(records: int, line: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= _PROGRESS_EVERY_S or (total and line >= total):
            last[0] = now
            state = {"records": records, "line": line, "total": total}
            write_atomic(folder / PROGRESS_NAME, json.dumps(state).encode())

    try:
        total = _count_lines(path, spec["max_uncompressed_bytes"])
        report = interpret_file(
            path, spec["tumor_type"], spec["sample"], spec["panel_mb"], progress,
            interpreter=model_interpreter(Path(spec["models_dir"])), file_name=spec["filename"],
            total_lines=total,
        )  # fmt: skip
        try:
            report.write_annotated_vcf(folder / ANNOTATED_NAME)
            annotated = True
        except InputError:  # BCF input: no text to annotate
            annotated = False
        payload = pickle.dumps((report, annotated))
        key = bytes.fromhex(os.environ[JOB_KEY_ENV])
        mac = hmac.new(key, payload, hashlib.sha256).digest()
        write_atomic(folder / REPORT_NAME, mac + payload)
    except InputError as exc:
        refusal = {
            "type": type(exc).__name__,
            "message": str(_renamed(exc, path, spec["filename"])),
        }
        write_atomic(folder / ERROR_NAME, json.dumps(refusal).encode())
    finally:
        path.unlink(missing_ok=True)


# -------------------------------------------------------------------------------- jobs


class VcfJob:
    """An interpretation running in its own process: poll `progress()` / `done()`, then
    `result()`.

    A separate `python -m workbench.vcf_service FOLDER` process rather than multiprocessing:
    Streamlit runs a page as the `__main__` module, which a spawned multiprocessing child
    would import, running the page again in the worker.
    """

    def __init__(self, process: subprocess.Popen, folder: Path, filename: str, user: User,
                 store: Store, target: str, key: bytes) -> None:  # fmt: skip
        self._process = process
        self._key = key
        self.folder = folder
        self.filename = filename
        self._user, self._store, self._target = user, store, target
        self._outcome: tuple[VcfReport, bool] | Exception | None = None

    def done(self) -> bool:
        return self._process.poll() is not None

    def progress(self) -> JobProgress:
        try:
            p = json.loads((self.folder / PROGRESS_NAME).read_text())
        except (OSError, ValueError):
            return JobProgress(0, None)
        total = p["total"]
        return JobProgress(p["records"], min(1.0, p["line"] / total) if total else None)

    def result(self, timeout: float | None = None) -> VcfReport:
        """The report, waiting up to `timeout` seconds (TimeoutError after). Raises the
        worker's InputError for a bad file, CmkdError when the worker failed. The first call
        audits the outcome."""
        if self._outcome is None:
            try:
                code = self._process.wait(timeout)
            except subprocess.TimeoutExpired as exc:
                raise TimeoutError(f"{self.filename}: still being interpreted") from exc
            self._outcome = self._read_outcome(code)
            self._audit()
        if isinstance(self._outcome, Exception):
            raise self._outcome
        return self._outcome[0]

    def _read_outcome(self, code: int) -> tuple[VcfReport, bool] | Exception:
        try:
            refusal = json.loads((self.folder / ERROR_NAME).read_text(encoding="utf-8"))
            return _ERRORS.get(refusal["type"], InputError)(refusal["message"])
        except FileNotFoundError:
            pass
        try:
            signed = (self.folder / REPORT_NAME).read_bytes()
        except FileNotFoundError:
            return CmkdError(f"{self.filename}: the interpretation stopped (exit code {code})")
        # Unpickle only what our own worker signed with this job's secret.
        mac, payload = signed[:_MAC_BYTES], signed[_MAC_BYTES:]
        if not hmac.compare_digest(mac, hmac.new(self._key, payload, hashlib.sha256).digest()):
            return CmkdError(f"{self.filename}: the worker's report failed its integrity check")
        return pickle.loads(payload)

    def _audit(self) -> None:
        outcome = self._outcome
        if isinstance(outcome, Exception):
            invalid = isinstance(outcome, InputError)
            line = _LINE_RE.search(str(outcome)) if invalid else None
            details = {"outcome": "rejected" if invalid else "failed",
                       "error": type(outcome).__name__,
                       "error_line": int(line[1]) if line else None}  # fmt: skip
        else:
            report = outcome[0]
            details = {"outcome": "ok", "n_variants": len(report.variants),
                       "n_actionable": len(report.actionable), "tmb": round(report.tmb, 2),
                       "n_warnings": len(report.warnings)}  # fmt: skip
        self._store.audit(self._user.name, "interpret_vcf", self._target, **details)

    @property
    def annotated_vcf(self) -> Path | None:
        """The annotated VCF (gzipped) after a successful `result()`; None otherwise (also for
        BCF input)."""
        if isinstance(self._outcome, tuple) and self._outcome[1]:
            return self.folder / ANNOTATED_NAME
        return None

    def cleanup(self) -> None:
        """Stop the worker if it still runs and delete the job's folder."""
        if self._process.poll() is None:
            self._process.terminate()
            self._process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_upload(
    user: User | None,
    data: bytes,
    filename: str,
    store: Store,
    ws: Workspace,
    tumor_type: str | None = None,
    sample: str | None = None,
    limits: UploadLimits | None = None,
    panel_mb: float = DEFAULT_PANEL_MB,
) -> VcfJob:
    """Check, audit and start interpreting an upload; returns at once with a job to poll.

    Raises PermissionDenied (role), InputError (size, unreadable header, unknown sample or
    tumour type) before any work starts.
    """
    salt = workspace_salt(ws)
    filename = Path(filename).name or UPLOAD_NAME
    file_psn = pseudonym(filename, salt)
    try:
        user = require(user, "interpret_vcf")
    except PermissionDenied:
        store.audit(user.name if user else "anonymous", "upload_vcf", "-", file=file_psn,
                    outcome="denied")  # fmt: skip
        raise
    limits = limits or UploadLimits()
    path: Path | None = None
    try:
        _check_size(data, filename, limits)
        _interpreter().check_tumor_type(tumor_type)
        if not panel_mb > 0:
            raise InputError(f"panel size must be positive megabases, got {panel_mb}")
        _sweep_stale_jobs()
        path = _private_copy(data)
        with open_vcf(path, sample) as reader:
            h = reader.header
    except InputError as exc:
        if path is not None:
            shutil.rmtree(path.parent, ignore_errors=True)
        line = _LINE_RE.search(str(exc))
        store.audit(user.name, "upload_vcf", "-", file=file_psn, size_bytes=len(data),
                    outcome="rejected", error_line=int(line[1]) if line else None)  # fmt: skip
        raise (_renamed(exc, path, filename) if path else exc) from None
    chosen = sample or h.tumor_sample or (h.samples[0] if h.samples else "")
    target = pseudonym(chosen, salt) if chosen else "-"
    store.audit(
        user.name, "upload_vcf", target, file=file_psn, size_bytes=len(data), outcome="accepted",
        compression=h.compression, n_samples=len(h.samples), tumor_type=tumor_type or "",
    )  # fmt: skip
    spec = {
        "filename": filename, "tumor_type": tumor_type, "sample": sample, "panel_mb": panel_mb,
        "max_uncompressed_bytes": limits.max_uncompressed_bytes,
        "models_dir": str(ws.models_dir),
    }  # fmt: skip
    folder = path.parent
    write_atomic(folder / JOB_NAME, json.dumps(spec).encode())
    key = secrets.token_bytes(32)
    env = {**os.environ, JOB_KEY_ENV: key.hex()}
    with open(folder / LOG_NAME, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "workbench.vcf_service", str(folder)], cwd=_REPO, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    return VcfJob(process, folder, filename, user, store, target, key)


def interpret_upload(
    user: User | None,
    data: bytes,
    filename: str,
    store: Store,
    ws: Workspace,
    tumor_type: str | None = None,
    sample: str | None = None,
    limits: UploadLimits | None = None,
    panel_mb: float = DEFAULT_PANEL_MB,
) -> VcfReport:
    """`start_upload` and wait for the report (the worker's folder is removed after)."""
    job = start_upload(user, data, filename, store, ws, tumor_type, sample, limits, panel_mb)
    try:
        return job.result()
    finally:
        job.cleanup()


if __name__ == "__main__":  # the worker process: python -m workbench.vcf_service FOLDER
    _run_job(Path(sys.argv[1]))
