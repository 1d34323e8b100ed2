"""The slide viewer's service: which slides a user may open, DeepZoom views, tissue QC, the
similarity heatmap of a query over a slide's tiles, and validated uploads.

Every public method checks `view_slides`. Opening a slide audits `view_slide` (panning and
zooming do not: one entry per slide opened, not per frame). Uploads are streamed into a
private temporary file inside `<workspace>/uploads/`, checked (size, then content: OpenSlide
for slides, PIL with a pixel cap for tile images), and renamed to `<sha256[:16]><suffix>`, so
the user's file name (possibly personal) is stored only as a pseudonym in the audit log.

Caches: open slides (and their DeepZoom tiles) and QC in memory; tile embeddings on disk under
`<workspace>/cache/slide_embeddings/`, keyed by the teacher version and the slide file, so a
retrained teacher or a replaced slide never reuses stale vectors.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from core.data.cohort_io import load_cases
from core.data.schema import LANGUAGES, TEACHER_LANGUAGE, Case
from core.errors import InputError
from core.io import atomic_path
from core.slides import (
    IMAGE_SUFFIXES,
    QC_TILE_PX,
    SLIDE_SUFFIXES,
    SlideGrid,
    SlideReader,
    TileQC,
    UploadLimits,
    View,
    Viewport,
    check_slide,
    embed_tiles,
    read_image,
    similarity_map,
    square_tile,
    tile_qc,
)
from workbench.commands.train import STUDENT_RUN, TEACHER_RUN
from workbench.errors import PermissionDenied
from workbench.roles import User, require
from workbench.store import Store, pseudonym
from workbench.workspace import Workspace, workspace_salt

PERMISSION = "view_slides"
EMBEDDINGS_DIR = "slide_embeddings"  # under the workspace cache
MAX_CELLS = 1024  # analysis cells per slide: bounds the first heatmap of a huge SVS (~1 s)
MAX_QUERY_CHARS = 1000  # longer queries are cut: the encoders read ~128 tokens anyway
_UPLOAD_ID = re.compile(r"[0-9a-f]{16}")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class SlideRef:
    """A slide the user opened: a cohort case's, or an upload (`case_id` "")."""

    key: str  # "case:<id>" or "upload:<id>": names the slide in widget keys and the audit
    path: Path
    case_id: str = ""
    cancer_type: str = ""
    subtype: str = ""


@dataclass(frozen=True)
class SlideQC:
    grid: SlideGrid
    qc: TileQC

    def counts(self) -> dict[str, int]:
        return {"tiles": len(self.grid), "background": int(self.qc.background.sum()),
                "pen": int(self.qc.pen.sum()), "tissue": int(self.qc.tissue.sum())}  # fmt: skip


@dataclass(frozen=True)
class Heatmap:
    scores: np.ndarray  # (rows, cols) cosine similarity; NaN on background and pen tiles
    grid: SlideGrid
    encoder: str  # "teacher" (English) or "student"


@dataclass(frozen=True)
class Upload:
    upload_id: str
    kind: str  # "slide" or "image"
    path: Path
    size_bytes: int


@dataclass(frozen=True)
class TileMatch:
    case_id: str
    cancer_type: str
    subtype: str
    score: float
    histology: tuple[str, ...] = ()  # the case slide's TIL and necrosis levels (FINDING ids)


@dataclass(frozen=True)
class TileReport:
    """An uploaded tile image: the image, its QC (one tile) and the nearest cases' slides."""

    image: np.ndarray  # (h, w, 3) uint8
    qc: TileQC
    matches: tuple[TileMatch, ...]


@dataclass(frozen=True)
class _Models:
    teacher: Any  # core.models.teacher.Teacher
    version: str
    stamp: tuple[int, ...]  # config.json mtimes of teacher and student when loaded
    student: Any = None  # core.train.distill.DistilledStudent, loaded on first use
    minilm: Any = None  # core.models.text.TeacherTextEncoder, loaded on first English query


def _stamp(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return 0


class SlideService:
    """Slides of one workspace for the viewer page; safe to share between sessions."""

    def __init__(self, ws: Workspace, store: Store | None = None,
                 limits: UploadLimits | None = None) -> None:  # fmt: skip
        self.ws = ws
        self.store = store or Store(ws.db_path)
        self.limits = limits or UploadLimits()
        self._lock = threading.Lock()
        self._models: _Models | None = None
        self._cases: tuple[int, dict[str, Case]] | None = None
        self._index: tuple[int, Any] | None = None
        self._open = lru_cache(maxsize=8)(self._open_reader)
        self._qc = lru_cache(maxsize=32)(self._compute_qc)

    # --------------------------------------------------------------------- cases

    def _case_map(self) -> dict[str, Case]:
        stamp = _stamp(self.ws.cohort_dir / "cases.jsonl")
        if self._cases is None or self._cases[0] != stamp:
            self._cases = (stamp, {c.case_id: c for c in load_cases(self.ws.cohort_dir)})
        return self._cases[1]

    def slide_cases(self, user: User | None) -> tuple[Case, ...]:
        """Cases with a whole-slide image on disk, in cohort order."""
        require(user, PERMISSION)
        return tuple(
            c for c in self._case_map().values()
            if c.slide_path and (self.ws.cohort_dir / c.slide_path).is_file()
        )  # fmt: skip

    def case(self, user: User | None, case_id: str) -> Case:
        require(user, PERMISSION)
        try:
            return self._case_map()[case_id]
        except KeyError:
            raise InputError(f"no case {case_id!r} in the cohort") from None

    def open_case(self, user: User | None, case_id: str) -> SlideRef:
        """The case's slide, audited as viewed; InputError when it has none."""
        case = self.case(user, case_id)
        path = self.ws.cohort_dir / case.slide_path if case.slide_path else None
        if path is None or not path.is_file():
            raise InputError(f"case {case_id} has no whole-slide image")
        ref = SlideRef(f"case:{case_id}", path, case_id, case.cancer_type, case.subtype)
        self._audit_view(user, ref)
        return ref

    def open_upload(self, user: User | None, upload_id: str) -> SlideRef:
        """An uploaded slide, audited as viewed."""
        require(user, PERMISSION)
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise InputError(f"no upload {upload_id!r}")
        found = [self._uploads / f"{upload_id}{s}" for s in SLIDE_SUFFIXES]
        path = next((p for p in found if p.is_file()), None)
        if path is None:
            raise InputError(f"no uploaded slide {upload_id}")
        ref = SlideRef(f"upload:{upload_id}", path)
        self._audit_view(user, ref)
        return ref

    def _audit_view(self, user: User, ref: SlideRef) -> None:
        target = ref.case_id or ref.key
        self.store.audit(user.name, "view_slide", target, source=ref.key.split(":")[0])

    def tiles(self, user: User | None, case_id: str) -> tuple[np.ndarray, TileQC]:
        """A case's tile images (N, h, w, 3), for a case without a whole slide, and their QC."""
        from core.data.pathology import load_tile

        user = require(user, PERMISSION)
        case = self.case(user, case_id)
        if not case.tile_paths:
            raise InputError(f"case {case_id} has no tile images")
        tiles = np.stack([load_tile(self.ws.cohort_dir / p) for p in case.tile_paths])
        small = np.stack([square_tile(t, QC_TILE_PX) for t in tiles])
        self.store.audit(user.name, "view_slide", case_id, source="tiles")
        return tiles, tile_qc(small)

    # ------------------------------------------------------------------- viewing

    def reader(self, user: User | None, ref: SlideRef) -> SlideReader:
        require(user, PERMISSION)
        return self._reader(ref.path)

    def _reader(self, path: Path) -> SlideReader:
        return self._open(path, _stamp(path))

    def _open_reader(self, path: Path, stamp: int) -> SlideReader:
        return SlideReader(path)  # `stamp` keys the cache: a replaced file is opened anew

    def view(self, user: User | None, ref: SlideRef, viewport: Viewport) -> View:
        return self.reader(user, ref).view(viewport)

    def qc(self, user: User | None, ref: SlideRef) -> SlideQC:
        require(user, PERMISSION)
        return self._qc(ref.path, _stamp(ref.path))

    def _compute_qc(self, path: Path, stamp: int) -> SlideQC:
        reader = self._reader(path)
        grid = reader.grid(MAX_CELLS)
        return SlideQC(grid, tile_qc(reader.grid_tiles(grid, QC_TILE_PX)))

    # ------------------------------------------------------------------- heatmap

    def heatmap(self, user: User | None, ref: SlideRef, query: str, lang: str) -> Heatmap:
        """Cosine similarity of each tissue tile of the slide to the query."""
        require(user, PERMISSION)
        vector, encoder = self.embed_query(query, lang)
        slide_qc = self.qc(user, ref)
        embeddings = self.tile_embeddings(ref)
        scores = similarity_map(embeddings, vector, slide_qc.grid, slide_qc.qc.tissue)
        return Heatmap(scores, slide_qc.grid, encoder)

    def tile_scores(
        self, user: User | None, tiles: np.ndarray, query: str, lang: str
    ) -> np.ndarray:
        """Cosine similarity (N,) of tile images (N, h, w, 3) to the query."""
        require(user, PERMISSION)
        vector, _ = self.embed_query(query, lang)
        return embed_tiles(self._load_models().teacher, tiles) @ vector

    def embed_query(self, query: str, lang: str) -> tuple[np.ndarray, str]:
        """The query as a shared-space unit vector (D,) and the encoder used: the teacher's
        text branch for English, the distilled student otherwise."""
        import torch

        text = " ".join(query.split())[:MAX_QUERY_CHARS]
        if not text:
            raise InputError("enter a query to compare the slide's tiles with")
        if lang not in LANGUAGES:
            raise InputError(f"unsupported language {lang!r}; supported: {', '.join(LANGUAGES)}")
        models = self._load_models()
        with torch.inference_mode():
            if lang == TEACHER_LANGUAGE:
                vector, encoder = models.teacher.embed_english(self._minilm(), [text]), "teacher"
            else:
                vector, encoder = self._student().predict([text], lang)[0], "student"
        vector = torch.nn.functional.normalize(vector.float(), dim=-1)[0]
        return vector.numpy(), encoder

    def tile_embeddings(self, ref: SlideRef) -> np.ndarray:
        """Teacher embeddings (cells, D) of the slide's analysis tiles, cached on disk."""
        models = self._load_models()
        reader = self._reader(ref.path)
        grid = reader.grid(MAX_CELLS)
        stat = ref.path.stat()
        key = hashlib.sha256(
            f"{models.version}|{ref.path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|"
            f"{grid}".encode()
        ).hexdigest()[:32]
        cached = self.ws.cache_dir / EMBEDDINGS_DIR / f"{key}.npy"
        if cached.is_file():
            return np.load(cached, allow_pickle=False)
        tiles = reader.grid_tiles(grid, models.teacher.config.tile_size)
        embeddings = embed_tiles(models.teacher, tiles)
        with atomic_path(cached) as tmp, open(tmp, "wb") as f:
            np.save(f, embeddings)
        return embeddings

    # -------------------------------------------------------------------- models

    def _load_models(self) -> _Models:
        """The teacher (reloaded when its config.json changes), with the student and MiniLM
        loaded on first use."""
        from core.train.teacher import CONFIG_FILE, load_teacher

        teacher_dir = self.ws.models_dir / TEACHER_RUN
        stamp = (_stamp(teacher_dir / CONFIG_FILE), _stamp(self._student_dir / CONFIG_FILE))
        with self._lock:
            if self._models is None or self._models.stamp != stamp:
                if not stamp[0]:
                    raise InputError(f"no teacher in {teacher_dir}: run `cmkd demo` first")
                teacher, _ = load_teacher(teacher_dir)
                config = json.loads((teacher_dir / CONFIG_FILE).read_text(encoding="utf-8"))
                self._models = _Models(teacher, str(config.get("version", "")), stamp)
            return self._models

    @property
    def _student_dir(self) -> Path:
        return self.ws.models_dir / STUDENT_RUN

    def _student(self) -> Any:
        from core.train.distill import load_distilled

        return self._lazy("student", lambda: load_distilled(self._student_dir))

    def _minilm(self) -> Any:
        from core.models.text import TeacherTextEncoder

        return self._lazy("minilm", TeacherTextEncoder)

    def _lazy(self, name: str, load: Callable[[], Any]) -> Any:
        models = self._load_models()
        with self._lock:
            if getattr(models, name) is None:
                self._models = models = dataclasses.replace(models, **{name: load()})
            return getattr(models, name)

    def _index_for(self, models: _Models) -> Any:
        from core.index import META_FILE, VectorIndex

        stamp = _stamp(self.ws.index_dir / META_FILE)
        if not stamp:
            raise InputError(f"no retrieval index in {self.ws.index_dir}: run `cmkd demo`")
        if self._index is None or self._index[0] != stamp:
            index = VectorIndex.load(
                self.ws.index_dir, models.version, models.teacher.config.embed_dim
            )
            self._index = (stamp, index)
        return self._index[1]

    # ------------------------------------------------------------------- uploads

    @property
    def _uploads(self) -> Path:
        return self.ws.uploads_dir

    def upload(self, user: User | None, data: BinaryIO, filename: str) -> Upload:
        """Validate and store an uploaded slide (.svs/.tif/.tiff) or tile image (.png/.jpg).

        InputError naming the file and the reason: unsupported type, empty, over the size
        limit, not readable as what its suffix says, corrupt, or over the pixel limit.
        """
        name = Path(filename).name or "upload"
        suffix = Path(name).suffix.lower()
        kind = "slide" if suffix in SLIDE_SUFFIXES else "image"
        salt = workspace_salt(self.ws)
        audit = {"file": pseudonym(name, salt), "kind": kind}
        try:
            user = require(user, PERMISSION)
        except PermissionDenied:
            self.store.audit(user.name if user else "anonymous", "upload_slide", "-",
                             outcome="denied", **audit)  # fmt: skip
            raise
        size = 0
        try:
            if suffix not in SLIDE_SUFFIXES + IMAGE_SUFFIXES:
                allowed = ", ".join(SLIDE_SUFFIXES + IMAGE_SUFFIXES)
                raise InputError(f"{name}: unsupported file type {suffix!r}; expected {allowed}")
            stored, size = self._store_upload(data, name, suffix, kind)
        except InputError as exc:
            self.store.audit(user.name, "upload_slide", "-", outcome="rejected",
                             size_bytes=size, reason=str(exc).removeprefix(f"{name}: "),
                             **audit)  # fmt: skip
            raise
        self.store.audit(user.name, "upload_slide", stored.upload_id, outcome="accepted",
                         size_bytes=size, **audit)  # fmt: skip
        return stored

    def _store_upload(
        self, data: BinaryIO, name: str, suffix: str, kind: str
    ) -> tuple[Upload, int]:
        limit = self.limits.max_bytes(suffix)
        self._uploads.mkdir(parents=True, exist_ok=True)
        # The suffix stays on the temporary file: OpenSlide picks some readers by it.
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=self._uploads)
        tmp = Path(tmp_name)
        digest, size = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := data.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise InputError(f"{name}: over the upload limit of {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            if not size:
                raise InputError(f"{name}: empty file")
            if kind == "slide":
                check_slide(tmp, name, self.limits)
            else:
                read_image(tmp, name, self.limits)
            upload_id = digest.hexdigest()[:16]
            path = self._uploads / f"{upload_id}{suffix}"
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return Upload(upload_id, kind, path, size), size

    def tile_report(self, user: User | None, upload: Upload, k: int = 5) -> TileReport:
        """QC of an uploaded tile image and the cases whose slides are nearest to it in the
        retrieval index (the teacher's slide branch on the tile alone)."""
        from core.index import SearchFilter

        require(user, PERMISSION)
        if upload.kind != "image":
            raise InputError("only a tile image has a tile report; open a slide in the viewer")
        image = read_image(upload.path, upload.path.name, self.limits)
        models = self._load_models()
        vector = embed_tiles(
            models.teacher, square_tile(image, models.teacher.config.tile_size)[None]
        )
        hits = self._index_for(models).search(vector[0], k, SearchFilter(modalities=("slide",)))
        cases = self._case_map()
        matches = tuple(
            TileMatch(
                h.meta.case_id,
                h.meta.cancer_type,
                h.meta.subtype,
                h.score,
                cases[h.meta.case_id].histology if h.meta.case_id in cases else (),
            )  # fmt: skip
            for h in hits
        )
        return TileReport(image, tile_qc(square_tile(image, QC_TILE_PX)[None]), matches)
