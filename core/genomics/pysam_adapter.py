"""The genomics package's only door to pysam/htslib: VCF/BCF records as VCF text lines.

htslib reports why it rejects a file only on file descriptor 2 (`[E::vcf_parse] ...`), while
pysam raises a bare "truncated file". So every call into htslib runs with fd 2 pointed at a
temporary file, and the captured messages travel with the result. Records come out in
batches, so the redirect (a few system calls) is paid once per batch, and no caller code
ever runs while fd 2 is redirected. Records are handed over as `str(record)`: htslib formats
a record in C faster than pysam builds Python objects field by field.

Errors raised here are `VcfError`s whose message is the bare reason; `reader.py` adds the
file name and line, which only it knows.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import pysam

from core.genomics.records import VcfError

# fd 2 belongs to the whole process: two readers in two threads must not swap it in turn.
_FD2_LOCK = threading.Lock()
_MESSAGE = re.compile(r"^\[([EWI])::(\w+)\] ?(.*)$")
# Printed at every open of a bgzipped file without a .tbi; reading never needs the index.
_HARMLESS = ("idx_find_and_load",)
_PYSAM_ERRORS = (OSError, ValueError, NotImplementedError)  # UnicodeDecodeError is a ValueError


class HtslibMessages:
    """What htslib printed during one call: error reasons and warnings, in order."""

    def __init__(self, text: str) -> None:
        self.errors: list[str] = []
        self.warnings: list[str] = []
        for line in text.splitlines():
            m = _MESSAGE.match(line)
            if m is None or m[2] in _HARMLESS:
                continue
            (self.errors if m[1] == "E" else self.warnings).append(m[3].strip())


class HtsVariantFile:
    """An open VCF or BCF. `source` is a path or a readable file descriptor (a pipe), which
    stays the caller's to close."""

    def __init__(self, source: str | int) -> None:
        self._capture = tempfile.TemporaryFile()
        self._vf: pysam.VariantFile | None = None
        try:
            with self._captured():
                self._vf = vf = pysam.VariantFile(source)
                self.header_text: str = str(vf.header)  # decoding it may fail too
                self.samples: tuple[str, ...] = tuple(vf.header.samples)
        except _PYSAM_ERRORS as exc:
            messages = self._drain()
            self.close()
            raise VcfError(_reason(exc, messages)) from exc
        self.open_messages = self._drain()

    def batches(self, size: int) -> Iterator[tuple[list[str], HtslibMessages]]:
        """Records as VCF lines (no newline), `size` at a time, each batch with the messages
        htslib printed while reading it. A failure first yields the good records before it,
        then raises VcfError with htslib's reason."""
        assert self._vf is not None
        records = iter(self._vf)
        while True:
            lines: list[str] = []
            append = lines.append
            failure: Exception | None = None
            with self._captured():
                try:
                    for rec in islice(records, size):
                        append(str(rec)[:-1])
                except _PYSAM_ERRORS as exc:
                    failure = exc
            done = len(lines) < size
            messages = self._drain()
            yield lines, messages
            if failure is not None:
                raise VcfError(_reason(failure, messages)) from failure
            if done:
                return

    def close(self) -> None:
        if self._vf is not None:
            self._vf.close()
            self._vf = None
        self._capture.close()

    @contextmanager
    def _captured(self) -> Iterator[None]:
        with _FD2_LOCK:
            if sys.stderr is not None:
                sys.stderr.flush()  # Python's pending output belongs on the real stderr
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 at all (a detached process): nothing to capture
                yield
                return
            os.dup2(self._capture.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)

    def _drain(self) -> HtslibMessages:
        """Messages captured since the last drain; empties the capture file."""
        fd = self._capture.fileno()
        size = os.lseek(fd, 0, os.SEEK_CUR)
        if size == 0:
            return HtslibMessages("")
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, size).decode("utf-8", "replace")
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        return HtslibMessages(text)


def _reason(exc: Exception, messages: HtslibMessages) -> str:
    """htslib's own last error when it printed one, else what pysam raised."""
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte 0x{exc.object[exc.start]:02X})"
    if messages.errors:
        return messages.errors[-1]
    return str(exc) or type(exc).__name__


def bgzip(src: Path, dst: Path) -> None:
    """Compress `src` into BGZF at `dst` (benchmarks and test fixtures)."""
    pysam.tabix_compress(str(src), str(dst), force=True)


def scan_baseline(path: Path, info_key: str, format_key: str) -> int:
    """Plain pysam iteration reading one INFO and one FORMAT field of the first sample: the
    baseline the benchmark compares the reader against. Returns the record count."""
    n = 0
    with pysam.VariantFile(str(path)) as vf:
        for rec in vf:
            rec.info[info_key]  # read and dropped: the reading is what is timed
            rec.samples[0][format_key]
            n += 1
    return n


def scan_python_floor(path: Path, rank: Callable[[str], int]) -> int:
    """The least a pure-Python interpreter must do per record, for the benchmark's floor: read
    the fields a report row holds for a single-sample, VEP-annotated SNV file (position,
    alleles, QUAL, FILTER, GT, DP, AF, every CSQ transcript), pick the allele's most severe
    transcript by `rank`, look its verdict up in a dict keyed like the interpreter's shared
    analyses, and keep one tuple per record. No validation, line numbers, warnings,
    decomposition or other annotators. Returns the record count."""
    verdicts: dict[tuple[str, str, bool], str] = {}
    rows: list[tuple] = []
    with pysam.VariantFile(str(path)) as vf:
        for rec in vf:
            alt = rec.alts[0]
            sample = rec.samples[0]
            best, best_rank = None, 1 << 30
            for transcript in rec.info["CSQ"]:
                fields = transcript.split("|")
                if fields[0] == alt and (r := rank(fields[1])) < best_rank:
                    best, best_rank = fields, r
            assert best is not None
            key = (best[3], best[1], bool(best[11]) and float(best[11]) >= 0.01)
            verdict = verdicts.setdefault(key, "VUS")
            rows.append((rec.chrom, rec.pos, rec.id, rec.ref, alt, rec.qual,
                         tuple(rec.filter.keys()), sample["GT"], sample["DP"], sample["AF"],
                         best[3], best[10], verdict))  # fmt: skip
    return len(rows)
