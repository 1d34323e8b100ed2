"""Retrieval over the teacher's shared space: every case's slide, genomic profile and English
notes as L2-normalised vectors with metadata, searched by inner product (= cosine).

Index type by size (`IndexConfig`): below `exact_threshold` vectors the search is exact, by
numpy brute force (one matrix-vector product + argpartition): as fast as `faiss.IndexFlatIP`
for a single query with one thread, several times faster with two on this 2-core CPU, and it
filters by masking scores (docs/search_benchmarks.md). Above the threshold FAISS IVF-Flat
(quantiser trained on a sample) or HNSW. With faiss-gpu and CUDA the
exact and IVF indexes run on the GPU (HNSW has no GPU version), with the same results.

Row ids are positions in insertion order and never change: `add` appends, so ids held by the
review store stay valid after new cases are imported.

Filters (modality, cancer type, stage, excluded cases) are exact: the exact index masks the
scores; an approximate index answers from the matching rows by brute force when they are few,
and otherwise over-fetches and filters, widening (more candidates, more IVF cells) until k
hits, falling back to brute force over the matching rows when widening is exhausted.

Saved folder (written into a temporary sibling, then renamed, so readers never see half an
index): vectors.npy (N, D) float32, meta.jsonl (one IndexMeta per row), index.faiss (approximate
indexes only) and meta.json (format, teacher_version, n_vectors, dim, index_type, created_at,
config, counts by modality and cancer type, sha256 checksum of the other files). `load` refuses
an index whose teacher version or dimension differs from the models in use (StaleIndexError).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from core.data.schema import MODALITIES
from core.errors import CmkdError, ConfigError, InputError
from core.io import atomic_directory, config_from_dict

INDEX_KINDS: tuple[str, ...] = ("auto", "exact", "ivf", "hnsw")
APPROX_KINDS: tuple[str, ...] = ("ivf", "hnsw")
GPU_MODES: tuple[str, ...] = ("auto", "cpu", "gpu")

FORMAT = 1  # meta.json layout version; bumped when the folder layout changes
META_FILE = "meta.json"
VECTORS_FILE = "vectors.npy"
ROWS_FILE = "meta.jsonl"
FAISS_FILE = "index.faiss"
SNIPPET_CHARS = 200  # note text kept per row for result cards
REBUILD_HINT = "rebuild with `cmkd index build`"


class StaleIndexError(CmkdError):
    """The index was built from another teacher (or dimension) than the models in use."""


@dataclass(frozen=True)
class IndexConfig:
    """How the index is built and searched; every default is what `cmkd index build` uses."""

    # "auto": exact below exact_threshold vectors, `approx` at or above; or force one kind.
    kind: str = "auto"
    # Exact brute force takes 3-8 ms per query at 100k x 256 here; beside ~18 ms of query
    # encoding that breaks the 20 ms end-to-end budget, so from there on: approximate.
    exact_threshold: int = 100_000
    # IVF: recall@10 >= 0.98 at 100k-1M, builds 2-5x faster than HNSW and is smaller on disk
    # (docs/search_benchmarks.md).
    approx: str = "ivf"
    # IVF cells; 0 = 4 * sqrt(n), the usual rule (capped so each cell gets >= 8 training points).
    nlist: int = 0
    # IVF cells scanned per query: recall@10 0.985-0.995 at 100k-1M on clustered data, p50
    # under 0.6 ms (docs/search_benchmarks.md).
    nprobe: int = 16
    # Vectors the IVF quantiser is trained on: k-means on all of 1M took ~6 min here.
    train_sample: int = 100_000
    # HNSW neighbours per node (faiss default 32) and build beam width (faiss default 40).
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    # HNSW search beam: 64 gave recall@10 0.92 on the test set, 128 gives >= 0.97 (10k-100k).
    hnsw_ef_search: int = 128
    # Filtered searches on an approximate index with at most this many matching rows use exact
    # brute force over those rows (~1 ms at 256-d), which is both exact and cheaper.
    exact_subset_max: int = 20_000
    # Most candidates one widened approximate search asks for; faiss-gpu selects at most 2048.
    max_fetch: int = 2048
    # "auto": GPU when faiss has GPU support and a CUDA device is visible; "cpu"; "gpu" (required).
    use_gpu: str = "auto"
    seed: int = 0  # picks the IVF training sample

    def __post_init__(self) -> None:
        problems = []
        if self.kind not in INDEX_KINDS:
            problems.append(f"kind must be one of {INDEX_KINDS}, got {self.kind!r}")
        if self.approx not in APPROX_KINDS:
            problems.append(f"approx must be one of {APPROX_KINDS}, got {self.approx!r}")
        if self.use_gpu not in GPU_MODES:
            problems.append(f"use_gpu must be one of {GPU_MODES}, got {self.use_gpu!r}")
        positive = ("exact_threshold", "nprobe", "train_sample", "hnsw_m",
                    "hnsw_ef_construction", "hnsw_ef_search", "max_fetch")  # fmt: skip
        problems += [f"{k} must be > 0" for k in positive if getattr(self, k) <= 0]
        problems += [f"{k} must be >= 0" for k in ("nlist", "exact_subset_max")
                     if getattr(self, k) < 0]  # fmt: skip
        if problems:
            raise ConfigError("IndexConfig: " + "; ".join(problems))

    def index_type(self, n: int) -> str:
        """The kind of index built for `n` vectors."""
        if self.kind != "auto":
            return self.kind
        return "exact" if n < self.exact_threshold else self.approx


@dataclass(frozen=True)
class IndexMeta:
    """What a result card shows about one indexed vector."""

    case_id: str
    modality: str  # one of MODALITIES
    cancer_type: str
    subtype: str
    stage: str
    snippet: str = ""  # start of the note text (notes only)
    note_kind: str = ""  # one of NOTE_KINDS (notes only)
    lang: str = ""  # language of the note (notes only)


@dataclass(frozen=True)
class SearchFilter:
    """Which rows may be returned; an empty tuple places no constraint."""

    modalities: tuple[str, ...] = ()
    cancer_types: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    exclude_cases: tuple[str, ...] = ()  # e.g. the case itself in "more like this case"

    def __post_init__(self) -> None:
        unknown = sorted(set(self.modalities) - set(MODALITIES))
        if unknown:
            raise InputError(f"unknown modality {unknown}; choose from {list(MODALITIES)}")

    @property
    def is_empty(self) -> bool:
        return not (self.modalities or self.cancer_types or self.stages or self.exclude_cases)


@dataclass(frozen=True)
class Hit:
    row: int  # stable id of the vector in the index
    score: float  # inner product of unit vectors (cosine), higher is closer
    meta: IndexMeta


def faiss_gpu_available() -> bool:
    """True when the installed faiss has GPU support and sees a CUDA device."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _use_gpu(mode: str) -> bool:
    available = faiss_gpu_available()
    if mode == "gpu" and not available:
        raise ConfigError(
            "use_gpu='gpu' but faiss has no GPU support or sees no CUDA device "
            "(install the [gpu] extra: faiss-gpu)"
        )
    return mode != "cpu" and available


class _Codes:
    """A string column as integer codes, so a filter is one vectorised table lookup."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self.codes = np.empty(0, dtype=np.int32)

    def extend(self, values: Sequence[str]) -> None:
        new = np.fromiter(
            (self.vocab.setdefault(v, len(self.vocab)) for v in values), np.int32, len(values)
        )
        self.codes = np.concatenate([self.codes, new])

    def isin(self, wanted: Iterable[str]) -> np.ndarray:
        """(N,) bool: rows whose value is one of `wanted`."""
        table = np.zeros(len(self.vocab), dtype=bool)
        table[[self.vocab[w] for w in wanted if w in self.vocab]] = True
        return table[self.codes]


def _as_unit_rows(vectors: np.ndarray, what: str) -> np.ndarray:
    """(N, D) float32 C-contiguous copy with unit rows; InputError on non-finite or zero rows."""
    x = np.array(vectors, dtype=np.float32, copy=True, order="C")
    if x.ndim != 2:
        raise InputError(f"{what} must be a 2-D array (N, D), got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
    if bad.size:
        raise InputError(f"{what}: row {int(bad[0])} is zero or not finite; cannot normalise it")
    x /= norms[:, None]
    return x


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best `k` columns of each row of `scores` (Q, M), best first; ties by column."""
    m = scores.shape[1]
    k = min(k, m)
    cols = (
        np.argpartition(-scores, k - 1, axis=1)[:, :k]
        if k < m
        else np.tile(np.arange(m), (len(scores), 1))
    )
    picked = np.take_along_axis(scores, cols, axis=1)
    order = np.lexsort((cols, -picked), axis=1)  # score descending, then column
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(cols, order, axis=1)


class VectorIndex:
    """Unit vectors (N, D) with one IndexMeta per row; see the module docstring."""

    def __init__(
        self,
        vectors: np.ndarray,
        meta: Sequence[IndexMeta],
        teacher_version: str,
        cfg: IndexConfig,
        index_type: str,
        created_at: str,
        faiss_index: Any = None,
    ) -> None:
        # Use `build` or `load`; this only assembles already-checked parts.
        self.cfg = cfg
        self.teacher_version = teacher_version
        self.index_type = index_type
        self.created_at = created_at
        self._vectors = vectors  # (N, D) float32, unit rows
        self._meta: list[IndexMeta] = []
        self._columns = {name: _Codes() for name in ("modality", "cancer_type", "stage", "case_id")}
        self._extend_meta(meta)
        self._gpu_resources: Any = None
        self._faiss = self._place(faiss_index)

    # ---------------------------------------------------------------- building

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        meta: Sequence[IndexMeta],
        teacher_version: str,
        cfg: IndexConfig | None = None,
    ) -> VectorIndex:
        """Index `vectors` (N, D), normalised here, with `meta[i]` describing row i."""
        cfg = cfg or IndexConfig()
        x = _as_unit_rows(vectors, "vectors")
        _check_meta(meta, len(x))
        if not len(x):
            raise InputError("nothing to index: no vectors")
        if not teacher_version:
            raise InputError("the teacher version of the indexed embeddings is required")
        index_type = cfg.index_type(len(x))
        faiss_index = None
        if index_type in APPROX_KINDS:
            faiss_index = _new_faiss_index(index_type, x, cfg)
            faiss_index.add(x)
        created_at = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(x, meta, teacher_version, cfg, index_type, created_at, faiss_index)

    def _place(self, cpu_index: Any) -> Any:
        """The searchable faiss index: `cpu_index` (None for exact), moved to the GPU when
        available; on a GPU the exact index is a faiss flat index too."""
        if self.index_type == "hnsw" or not _use_gpu(self.cfg.use_gpu):
            return cpu_index
        import faiss

        if cpu_index is None:
            cpu_index = faiss.IndexFlatIP(self.dim)
            cpu_index.add(self._vectors)
        self._gpu_resources = faiss.StandardGpuResources()
        return faiss.index_cpu_to_gpu(self._gpu_resources, 0, cpu_index)

    @property
    def nlist(self) -> int | None:
        """IVF cells; None for other kinds."""
        return int(self._faiss.nlist) if self.index_type == "ivf" else None

    @property
    def on_gpu(self) -> bool:
        return self._gpu_resources is not None

    def _extend_meta(self, meta: Sequence[IndexMeta]) -> None:
        self._meta.extend(meta)
        for name, column in self._columns.items():
            column.extend([getattr(m, name) for m in meta])

    def add(self, vectors: np.ndarray, meta: Sequence[IndexMeta]) -> range:
        """Append new rows (e.g. imported cases); returns their ids. Existing ids are kept.

        Searches may run concurrently with each other, but not with `add`: callers that add
        to a shared index swap in a new one or hold a lock.
        """
        x = _as_unit_rows(vectors, "vectors")
        _check_meta(meta, len(x))
        if x.shape[1] != self.dim:
            raise InputError(f"vectors have dimension {x.shape[1]}, the index has {self.dim}")
        start = len(self)
        self._vectors = np.concatenate([self._vectors, x])
        self._extend_meta(meta)
        if self._faiss is not None:
            self._faiss.add(x)
        return range(start, len(self))

    # ---------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self._meta)

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def vectors(self) -> np.ndarray:
        """(N, D) unit vectors, read-only."""
        view = self._vectors.view()
        view.flags.writeable = False
        return view

    @property
    def meta(self) -> tuple[IndexMeta, ...]:
        return tuple(self._meta)

    def case_rows(self, case_id: str) -> np.ndarray:
        """Ids of the rows of `case_id` (any modality), ascending."""
        return np.flatnonzero(self._columns["case_id"].isin([case_id]))

    def counts(self, field: str) -> dict[str, int]:
        """Rows per value of an IndexMeta field, e.g. counts("modality")."""
        return dict(Counter(getattr(m, field) for m in self._meta))

    # ---------------------------------------------------------------- searching

    def search(
        self, query: np.ndarray, k: int = 10, filters: SearchFilter | None = None
    ) -> list[Hit]:
        """The `k` best rows for one query (D,), best first (fewer when fewer rows match)."""
        q = np.asarray(query)
        if q.ndim != 1:
            raise InputError(f"search takes one query (D,); got shape {q.shape}, use search_many")
        return self.search_many(q[None], k, filters)[0]

    def search_many(
        self, queries: np.ndarray, k: int = 10, filters: SearchFilter | None = None
    ) -> list[list[Hit]]:
        """The `k` best rows for each query of `queries` (Q, D)."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        q = np.asarray(queries)
        if q.ndim != 2:
            raise InputError(f"queries must be a 2-D array (Q, D), got shape {q.shape}")
        if q.shape[1] != self.dim:
            raise StaleIndexError(
                f"query vectors have shape {q.shape}, the index holds {self.dim}-d vectors of "
                f"teacher {self.teacher_version}: {REBUILD_HINT} from the models in use"
            )
        q = _as_unit_rows(q, "queries")
        mask = self._mask(filters) if filters is not None and not filters.is_empty else None
        matches = len(self) if mask is None else int(mask.sum())
        if self._faiss is None or (mask is not None and matches <= self.cfg.exact_subset_max):
            scores, rows = self._exact(q, k, mask)
        else:
            scores, rows = self._approximate(q, k, mask, matches)
        return [
            [Hit(int(r), float(s), self._meta[r]) for s, r in zip(ss, rr, strict=True)]
            for ss, rr in zip(scores, rows, strict=True)
        ]

    def _mask(self, f: SearchFilter) -> np.ndarray:
        """(N,) bool: rows that pass `f`."""
        mask = np.ones(len(self), dtype=bool)
        for name, wanted in (("modality", f.modalities), ("cancer_type", f.cancer_types),
                             ("stage", f.stages)):  # fmt: skip
            if wanted:
                mask &= self._columns[name].isin(wanted)
        if f.exclude_cases:
            mask &= ~self._columns["case_id"].isin(f.exclude_cases)
        return mask

    def _exact(
        self, q: np.ndarray, k: int, mask: np.ndarray | None
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Brute force over all rows, or only the rows of `mask` when it selects few."""
        if mask is None:
            scores, rows = _topk(q @ self._vectors.T, k)  # (Q, N) -> (Q, k)
            return list(scores), list(rows)
        allowed = np.flatnonzero(mask)
        if not allowed.size:
            return [np.empty(0, np.float32)] * len(q), [np.empty(0, np.int64)] * len(q)
        if allowed.size <= self.cfg.exact_subset_max:
            scores, cols = _topk(q @ self._vectors[allowed].T, k)  # (Q, |allowed|)
            return list(scores), list(allowed[cols])
        all_scores = q @ self._vectors.T  # (Q, N)
        all_scores[:, ~mask] = -np.inf
        scores, rows = _topk(all_scores, min(k, allowed.size))
        return list(scores), list(rows)

    def _faiss_search(self, q: np.ndarray, fetch: int, nprobe: int) -> tuple[np.ndarray, ...]:
        import faiss

        params = None
        if self.index_type == "ivf":
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        elif self.index_type == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.cfg.hnsw_ef_search, fetch))
        return self._faiss.search(q, fetch, params=params)

    def _approximate(
        self, q: np.ndarray, k: int, mask: np.ndarray | None, matches: int
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """faiss search, over-fetching by the filter's selectivity and widening on a shortfall."""
        n = len(self)
        cap = min(n, max(self.cfg.max_fetch, k))
        # A filter keeping a share s of the rows needs ~k/s candidates; twice that absorbs chance.
        fetch = min(cap, k if mask is None else math.ceil(2 * k * n / matches))
        nlist = self.nlist or 1
        nprobe = min(self.cfg.nprobe, nlist)
        all_scores, all_rows = self._faiss_search(q, fetch, nprobe)
        out_scores, out_rows = [], []
        for i in range(len(q)):
            scores, rows = _keep(all_scores[i], all_rows[i], mask)
            f, p = fetch, nprobe
            while len(rows) < k and f < cap:
                f, p = min(cap, 4 * f), min(nlist, 2 * p)
                scores, rows = _keep(*(a[0] for a in self._faiss_search(q[i : i + 1], f, p)), mask)
            if len(rows) < min(k, matches):
                # Widening is exhausted: brute force over the matching rows is exact.
                s, r = self._exact(q[i : i + 1], k, mask)
                scores, rows = s[0], r[0]
            out_scores.append(scores[:k])
            out_rows.append(rows[:k])
        return out_scores, out_rows

    # ---------------------------------------------------------------- persistence

    def save(self, directory: Path) -> Path:
        """Write the index folder atomically (see the module docstring); returns it."""
        import faiss

        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            np.save(tmp / VECTORS_FILE, self._vectors, allow_pickle=False)
            lines = (json.dumps(dataclasses.asdict(m), ensure_ascii=False) for m in self._meta)
            (tmp / ROWS_FILE).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
            files = [VECTORS_FILE, ROWS_FILE]
            if self.index_type in APPROX_KINDS:
                cpu = faiss.index_gpu_to_cpu(self._faiss) if self.on_gpu else self._faiss
                faiss.write_index(cpu, str(tmp / FAISS_FILE))
                files.append(FAISS_FILE)
            info = {
                "format": FORMAT,
                "teacher_version": self.teacher_version,
                "n_vectors": len(self),
                "dim": self.dim,
                "index_type": self.index_type,
                "nlist": self.nlist,
                "created_at": self.created_at,
                "config": dataclasses.asdict(self.cfg),
                "by_modality": self.counts("modality"),
                "by_cancer_type": self.counts("cancer_type"),
                "files": files,
                "checksum": _checksum(tmp, files),
            }
            (tmp / META_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def load(
        cls,
        directory: Path,
        expected_teacher_version: str | None = None,
        expected_dim: int | None = None,
    ) -> VectorIndex:
        """The index saved in `directory`.

        StaleIndexError when it was built from another teacher version or dimension than
        expected; InputError when it is missing, unreadable or fails its checksum.
        """
        import faiss

        directory = Path(directory)
        info = read_index_info(directory)
        built = info["teacher_version"]
        if expected_teacher_version is not None and built != expected_teacher_version:
            raise StaleIndexError(
                f"index built from teacher {built}, models are teacher "
                f"{expected_teacher_version}: {REBUILD_HINT}"
            )
        if expected_dim is not None and info["dim"] != expected_dim:
            raise StaleIndexError(
                f"index holds {info['dim']}-d vectors (teacher {built}), models embed "
                f"{expected_dim}-d: {REBUILD_HINT}"
            )
        files = list(info.get("files", ()))
        try:
            if _checksum(directory, files) != info.get("checksum"):
                raise InputError(f"{directory}: index files fail their checksum; {REBUILD_HINT}")
            vectors = np.load(directory / VECTORS_FILE, allow_pickle=False)
            with (directory / ROWS_FILE).open(encoding="utf-8") as f:
                meta = [IndexMeta(**json.loads(line)) for line in f]
            faiss_index = None
            if info["index_type"] in APPROX_KINDS:
                faiss_index = faiss.read_index(str(directory / FAISS_FILE))
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            raise InputError(f"{directory}: unreadable index ({exc}); {REBUILD_HINT}") from exc
        if vectors.shape != (info["n_vectors"], info["dim"]) or len(meta) != len(vectors):
            raise InputError(f"{directory}: index files disagree with meta.json; {REBUILD_HINT}")
        cfg = config_from_dict(IndexConfig, info["config"])
        return cls(vectors, meta, built, cfg, info["index_type"], info["created_at"], faiss_index)


def _keep(
    scores: np.ndarray, rows: np.ndarray, mask: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Drop faiss's -1 padding and rows outside `mask`, keeping the order."""
    ok = rows >= 0
    if mask is not None:
        ok[ok] = mask[rows[ok]]
    return scores[ok], rows[ok]


def _check_meta(meta: Sequence[IndexMeta], n: int) -> None:
    if len(meta) != n:
        raise InputError(f"{n} vectors but {len(meta)} metadata rows")
    bad = next((m for m in meta if m.modality not in MODALITIES), None)
    if bad is not None:
        raise InputError(f"case {bad.case_id}: unknown modality {bad.modality!r}")


def _new_faiss_index(index_type: str, x: np.ndarray, cfg: IndexConfig) -> Any:
    """An empty, trained IVF-Flat or HNSW-Flat inner-product index for vectors like `x`."""
    import faiss

    n, d = x.shape
    if index_type == "hnsw":
        index = faiss.index_factory(d, f"HNSW{cfg.hnsw_m},Flat", faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = cfg.hnsw_ef_construction
        return index
    n_train = min(n, cfg.train_sample)
    min_per_cell = 8  # fewer training points per cell make k-means centroids meaningless
    nlist = cfg.nlist or round(4 * math.sqrt(n))
    nlist = max(1, min(nlist, n_train // min_per_cell))
    index = faiss.index_factory(d, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
    index.cp.min_points_per_centroid = min_per_cell
    sample = np.random.default_rng(cfg.seed).choice(n, n_train, replace=False)
    index.train(x[np.sort(sample)])
    return index


def _checksum(directory: Path, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0")
        with (Path(directory) / name).open("rb") as f:
            while chunk := f.read(1 << 24):
                h.update(chunk)
    return h.hexdigest()


def read_index_info(directory: Path) -> dict[str, Any]:
    """meta.json of the index in `directory`, without loading vectors (for `cmkd index info`).

    InputError when there is no index or meta.json is unreadable or of another format.
    """
    path = Path(directory) / META_FILE
    if not path.exists():
        raise InputError(f"no index in {directory}: build one with `cmkd index build`")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable ({exc}); {REBUILD_HINT}") from exc
    required = ("teacher_version", "n_vectors", "dim", "index_type", "created_at", "config")
    if (
        not isinstance(info, dict)
        or info.get("format") != FORMAT
        or any(k not in info for k in required)
    ):
        raise InputError(f"{path}: not an index of format {FORMAT}; {REBUILD_HINT}")
    return info


def build_from_teacher_run(
    teacher_dir: Path, cohort_dir: Path, cfg: IndexConfig | None = None
) -> VectorIndex:
    """Index every case's slide, genomic and English-note embeddings written by the teacher.

    Cohort cases the teacher did not embed (imported after training) are left out; `add`
    them once embedded. InputError when the teacher embedded cases the cohort lacks.
    """
    from core.data.cohort_io import load_cases
    from core.train.teacher import load_embeddings

    tensors, info = load_embeddings(Path(teacher_dir))
    cases = {c.case_id: c for c in load_cases(Path(cohort_dir))}
    unknown = [cid for cid in info["case_ids"] if cid not in cases]
    if unknown:
        raise InputError(
            f"{teacher_dir}: the teacher embedded {len(unknown)} case(s) missing from "
            f"{cohort_dir} (e.g. {unknown[0]}): was it trained on another cohort?"
        )
    present = tensors["present"].numpy()  # (C, 3) in info["modalities"] order
    note_present = tensors["note_present"].numpy()  # (C, K)
    per_case = {m: tensors[m].float().numpy() for m in ("slide", "genomic")}  # (C, D) each
    notes = tensors["notes"].float().numpy()  # (C, K, D)
    vectors: list[np.ndarray] = []
    meta: list[IndexMeta] = []
    for i, case_id in enumerate(info["case_ids"]):
        case = cases[case_id]
        common = {"case_id": case_id, "cancer_type": case.cancer_type,
                  "subtype": case.subtype, "stage": case.stage}  # fmt: skip
        for m in ("slide", "genomic"):
            if present[i, info["modalities"].index(m)]:
                vectors.append(per_case[m][i])
                meta.append(IndexMeta(modality=m, **common))
        for j, kind in enumerate(info["note_kinds"]):
            note = case.note("en", kind)
            if note_present[i, j] and note is not None:
                vectors.append(notes[i, j])
                meta.append(IndexMeta(modality="note", snippet=_snippet(note.text),
                                      note_kind=kind, lang="en", **common))  # fmt: skip
    if not vectors:
        raise InputError(f"{teacher_dir}: the teacher's embeddings hold no case to index")
    return VectorIndex.build(np.stack(vectors), meta, info["version"], cfg)


def _snippet(text: str) -> str:
    """The first ~SNIPPET_CHARS characters of `text`, cut at a word boundary."""
    text = " ".join(text.split())
    if len(text) <= SNIPPET_CHARS:
        return text
    cut = text[:SNIPPET_CHARS]
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut) + "…"
