"""The retrieval index: exactness, recall of approximate kinds, filters, incremental add,
atomic save/load and refusal of a stale index."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest

from core.data.cohort_io import load_cases
from core.data.schema import CANCER_TYPES, MODALITIES, NOTE_KINDS, STAGES
from core.errors import ConfigError, InputError
from core.index import (
    FAISS_FILE,
    VECTORS_FILE,
    IndexConfig,
    IndexMeta,
    SearchFilter,
    StaleIndexError,
    VectorIndex,
    build_from_teacher_run,
    faiss_gpu_available,
)

DIM = 32
VERSION = "teacher-test-1"


def clustered(n: int, seed: int, n_clusters: int = 40, spread: float = 0.35) -> np.ndarray:
    """Unit vectors around `n_clusters` random centres: a realistic case for IVF cells."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, DIM))
    x = centres[rng.integers(n_clusters, size=n)] + spread * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def rows_meta(n: int, offset: int = 0) -> list[IndexMeta]:
    """Three rows (slide, genomic, note) per case; type and stage cycle over cases."""
    rows = []
    for i in range(offset, offset + n):
        case = i // 3
        rows.append(IndexMeta(case_id=f"C{case:05d}", modality=MODALITIES[i % 3],
                              cancer_type=CANCER_TYPES[case % len(CANCER_TYPES)], subtype="",
                              stage=STAGES[case % len(STAGES)]))  # fmt: skip
    return rows


def brute_force(x: np.ndarray, q: np.ndarray, k: int, allowed: np.ndarray | None = None):
    scores = x @ q
    rows = np.arange(len(x)) if allowed is None else np.flatnonzero(allowed)
    best = rows[np.argsort(-scores[rows], kind="stable")[:k]]
    return best, scores[best]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return clustered(4000, seed=0)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(50, seed=1)


def test_build_then_search_finds_each_vector_itself(data: np.ndarray) -> None:
    meta = rows_meta(len(data))
    index = VectorIndex.build(3.0 * data, meta, VERSION)  # normalised on build
    assert index.index_type == "exact" and len(index) == len(data) and index.dim == DIM
    for row in (0, 17, len(data) - 1):
        top = index.search(data[row], k=3)[0]
        assert top.row == row and top.meta == meta[row]
        assert top.score == pytest.approx(1.0, abs=1e-5)


def test_exact_search_equals_numpy_brute_force(data: np.ndarray, queries: np.ndarray) -> None:
    index = VectorIndex.build(data, rows_meta(len(data)), VERSION, IndexConfig(kind="exact"))
    for q, hits in zip(queries, index.search_many(queries, k=10), strict=True):
        rows, scores = brute_force(data, q, 10)
        assert [h.row for h in hits] == rows.tolist()
        np.testing.assert_allclose([h.score for h in hits], scores, rtol=1e-5)


def test_auto_kind_follows_the_size_threshold() -> None:
    cfg = IndexConfig(exact_threshold=100)
    assert (cfg.index_type(99), cfg.index_type(100)) == ("exact", "ivf")
    assert IndexConfig(kind="hnsw").index_type(10) == "hnsw"
    with pytest.raises(ConfigError):
        IndexConfig(kind="annoy")
    with pytest.raises(ConfigError):
        IndexConfig(nprobe=0)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_recall_at_10_against_exact(
    kind: str, data: np.ndarray, queries: np.ndarray
) -> None:
    meta = rows_meta(len(data))
    exact = VectorIndex.build(data, meta, VERSION, IndexConfig(kind="exact"))
    approx = VectorIndex.build(data, meta, VERSION, IndexConfig(kind=kind))
    assert approx.index_type == kind
    truth = [{h.row for h in hits} for hits in exact.search_many(queries, 10)]
    found = [{h.row for h in hits} for hits in approx.search_many(queries, 10)]
    recall = np.mean([len(t & f) / 10 for t, f in zip(truth, found, strict=True)])
    assert recall >= 0.95


@pytest.mark.parametrize(
    "cfg",
    [
        IndexConfig(kind="exact"),
        IndexConfig(kind="ivf"),  # few matching rows: brute force over them
        IndexConfig(kind="ivf", exact_subset_max=0, nprobe=64),  # over-fetch and filter
        IndexConfig(kind="hnsw", exact_subset_max=0),
    ],
    ids=["exact", "ivf-subset", "ivf-overfetch", "hnsw-overfetch"],
)
def test_filters_return_only_matching_rows_in_score_order(
    cfg: IndexConfig, data: np.ndarray, queries: np.ndarray
) -> None:
    meta = rows_meta(len(data))
    index = VectorIndex.build(data, meta, VERSION, cfg)
    f = SearchFilter(modalities=("note",), cancer_types=("BRCA", "LUAD"),
                     exclude_cases=(meta[0].case_id,))  # fmt: skip
    allowed = np.array(
        [
            m.modality == "note" and m.cancer_type in ("BRCA", "LUAD") and m.case_id != "C00000"
            for m in meta
        ]  # fmt: skip
    )
    for q in queries[:10]:
        hits = index.search(q, k=10, filters=f)
        assert len(hits) == 10 and all(allowed[h.row] for h in hits)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)
        rows, _ = brute_force(data, q, 10, allowed)
        assert len({h.row for h in hits} & set(rows.tolist())) >= 9  # exact, or nearly


def test_filter_with_fewer_matches_than_k_returns_all_of_them(data: np.ndarray) -> None:
    meta = rows_meta(len(data))
    case = meta[300].case_id
    others = tuple({m.case_id for m in meta} - {case})
    for cfg in (IndexConfig(kind="exact"), IndexConfig(kind="ivf", exact_subset_max=0, nprobe=1)):
        index = VectorIndex.build(data, meta, VERSION, cfg)
        mine = index.search(data[0], k=10, filters=SearchFilter(exclude_cases=others))
        assert sorted(h.row for h in mine) == index.case_rows(case).tolist() == [300, 301, 302]
        none = SearchFilter(cancer_types=("NOT-A-TYPE",))
        assert index.search(data[0], k=10, filters=none) == []


def test_ivf_widens_when_probed_cells_hold_too_few_rows(data: np.ndarray) -> None:
    cfg = IndexConfig(kind="ivf", nprobe=1, nlist=len(data) // 8, exact_subset_max=0)
    index = VectorIndex.build(data, rows_meta(len(data)), VERSION, cfg)
    hits = index.search(data[5], k=200)
    assert len(hits) == 200 and len({h.row for h in hits}) == 200


def test_unknown_modality_filter_is_refused() -> None:
    with pytest.raises(InputError, match="unknown modality"):
        SearchFilter(modalities=("all",))


@pytest.mark.parametrize("kind", ["exact", "ivf", "hnsw"])
def test_incremental_add_keeps_ids_and_finds_new_rows(kind: str, data: np.ndarray) -> None:
    old, new = data[:3000], clustered(20, seed=9)
    index = VectorIndex.build(old, rows_meta(len(old)), VERSION, IndexConfig(kind=kind))
    before = [h.row for h in index.search(old[42], k=5)]
    ids = index.add(new, rows_meta(len(new), offset=len(old)))
    assert ids == range(3000, 3020) and len(index) == 3020
    for i, row in enumerate(ids):
        top = index.search(new[i], k=1)[0]
        assert top.row == row and top.meta.case_id == f"C{row // 3:05d}"
    assert index.search(old[42], k=1)[0].row == before[0] == 42
    with pytest.raises(InputError, match="dimension"):
        index.add(np.ones((1, DIM + 1), np.float32), rows_meta(1))


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_save_load_round_trip(
    kind: str, tmp_path: Path, data: np.ndarray, queries: np.ndarray
) -> None:
    meta = rows_meta(len(data))
    meta[4] = IndexMeta("C00001", "note", "BRCA", "BRCA_HER2", "IV", "HER2 amplified, ‘3+’ …",
                        "clinic_note", "en")  # fmt: skip
    index = VectorIndex.build(data, meta, VERSION, IndexConfig(kind=kind, nprobe=8))
    out = index.save(tmp_path / "index")
    assert (out / FAISS_FILE).exists() == (kind == "ivf")
    info = json.loads((out / "meta.json").read_text())
    assert info["teacher_version"] == VERSION and info["n_vectors"] == len(data)
    assert info["dim"] == DIM and info["index_type"] == kind and info["created_at"]
    assert sum(info["by_modality"].values()) == len(data)

    loaded = VectorIndex.load(out, expected_teacher_version=VERSION, expected_dim=DIM)
    assert loaded.meta == index.meta and loaded.cfg == index.cfg
    assert (loaded.index_type, loaded.created_at) == (index.index_type, index.created_at)
    assert loaded.search_many(queries, 10) == index.search_many(queries, 10)


def test_load_refuses_a_stale_index(tmp_path: Path, data: np.ndarray) -> None:
    out = VectorIndex.build(data[:50], rows_meta(50), VERSION).save(tmp_path / "index")
    with pytest.raises(StaleIndexError) as err:
        VectorIndex.load(out, expected_teacher_version="teacher-test-2")
    message = str(err.value)
    assert VERSION in message and "teacher-test-2" in message
    assert "cmkd index build" in message
    with pytest.raises(StaleIndexError, match="64-d"):
        VectorIndex.load(out, expected_dim=64)
    index = VectorIndex.load(out, expected_teacher_version=VERSION)
    with pytest.raises(StaleIndexError, match="rebuild"):
        index.search(np.ones(DIM + 1, np.float32))


def test_load_refuses_missing_or_damaged_index(tmp_path: Path, data: np.ndarray) -> None:
    with pytest.raises(InputError, match="cmkd index build"):
        VectorIndex.load(tmp_path / "nowhere")
    out = VectorIndex.build(data[:50], rows_meta(50), VERSION).save(tmp_path / "index")
    vectors = np.load(out / VECTORS_FILE)
    vectors[0, 0] += 0.5
    np.save(out / VECTORS_FILE, vectors)
    with pytest.raises(InputError, match="checksum"):
        VectorIndex.load(out)


def test_interrupted_save_leaves_no_partial_folder(
    tmp_path: Path, data: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = VectorIndex.build(data[:50], rows_meta(50), VERSION)
    target = tmp_path / "index"

    def crash(*_args: object) -> str:  # after the data files are written, before meta.json
        raise KeyboardInterrupt

    monkeypatch.setattr("core.index._checksum", crash)
    with pytest.raises(KeyboardInterrupt):
        index.save(target)
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    index.save(target)
    before = sorted((p.name, p.read_bytes()) for p in target.iterdir())
    bigger = VectorIndex.build(data[:80], rows_meta(80), "teacher-test-2")
    monkeypatch.setattr("core.index._checksum", crash)
    with pytest.raises(KeyboardInterrupt):
        bigger.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["index"]  # no temp sibling left
    assert sorted((p.name, p.read_bytes()) for p in target.iterdir()) == before


def test_build_rejects_bad_input(data: np.ndarray) -> None:
    with pytest.raises(InputError, match="metadata"):
        VectorIndex.build(data[:5], rows_meta(4), VERSION)
    bad = data[:5].copy()
    bad[3] = 0
    with pytest.raises(InputError, match="row 3"):
        VectorIndex.build(bad, rows_meta(5), VERSION)
    with pytest.raises(InputError, match="modality"):
        VectorIndex.build(data[:1], [IndexMeta("C1", "text", "BRCA", "", "I")], VERSION)


def write_teacher_embeddings(teacher_dir: Path, case_ids: list[str], seed: int = 0) -> None:
    """embeddings.safetensors as core.train.teacher writes it (only what the index reads)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    c, k = len(case_ids), len(NOTE_KINDS)
    present = np.ones((c, 3), dtype=bool)
    present[0, 0] = False  # the first case has no slide
    note_present = np.ones((c, k), dtype=bool)
    note_present[1, 2] = False  # the second case lacks its third note kind
    tensors = {
        "slide": rng.standard_normal((c, DIM)).astype(np.float32),
        "genomic": rng.standard_normal((c, DIM)).astype(np.float32),
        "notes": rng.standard_normal((c, k, DIM)).astype(np.float32),
        "present": present,
        "note_present": note_present,
    }
    tensors["slide"][0] = 0  # absent rows are zeros
    meta = {"version": VERSION, "case_ids": json.dumps(case_ids),
            "modalities": json.dumps(["slide", "genomic", "text"]),
            "note_kinds": json.dumps(list(NOTE_KINDS))}  # fmt: skip
    teacher_dir.mkdir(parents=True)
    save_file(tensors, str(teacher_dir / "embeddings.safetensors"), metadata=meta)
    config = {"kind": "teacher", "version": VERSION}
    (teacher_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")


def test_build_from_teacher_run(tiny_cohort: Path, tmp_path: Path) -> None:
    cases = load_cases(tiny_cohort)
    teacher = tmp_path / "teacher-1"
    write_teacher_embeddings(teacher, [c.case_id for c in cases])
    index = build_from_teacher_run(teacher, tiny_cohort)
    n, k = len(cases), len(NOTE_KINDS)
    assert len(index) == (n - 1) + n + (n * k - 1)
    assert index.teacher_version == VERSION
    assert index.counts("modality") == {"slide": n - 1, "genomic": n, "note": n * k - 1}
    first = [index.meta[r] for r in index.case_rows(cases[0].case_id)]
    assert [m.modality for m in first] == ["genomic", "note", "note", "note"]
    note = first[1]
    assert (note.note_kind, note.lang) == (NOTE_KINDS[0], "en")
    text = cases[0].note("en", NOTE_KINDS[0]).text
    assert note.snippet and len(note.snippet) <= 201
    assert " ".join(text.split()).startswith(note.snippet.rstrip("…"))
    assert (note.cancer_type, note.subtype, note.stage) == (
        cases[0].cancer_type, cases[0].subtype, cases[0].stage)  # fmt: skip

    other = tmp_path / "teacher-2"
    write_teacher_embeddings(other, [c.case_id for c in cases] + ["NOT-IN-COHORT"])
    with pytest.raises(InputError, match="another cohort"):
        build_from_teacher_run(other, tiny_cohort)


def test_index_commands_build_and_info(
    tiny_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Lives here until the lead files it under tests/workbench/ (the CLI wiring is theirs).
    from workbench.commands.index import register

    parser = argparse.ArgumentParser(prog="cmkd")
    register(parser.add_subparsers(dest="command", required=True))
    cases = load_cases(tiny_workspace / "cohort")
    old = tiny_workspace / "models" / "teacher-zzz-old"  # sorts last by name, older by time
    write_teacher_embeddings(old, ["x", "y"], seed=1)
    os.utime(old / "config.json", (1_000_000_000, 1_000_000_000))
    write_teacher_embeddings(tiny_workspace / "models" / "teacher-new",
                             [c.case_id for c in cases])  # fmt: skip

    args = parser.parse_args(["index", "build", "--json"])
    assert args.func(args) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["teacher_dir"].endswith("teacher-new")  # the newest run is the default
    args = parser.parse_args(["index", "info", "--json"])
    assert args.func(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_vectors"] == built["n_vectors"] == sum(info["by_modality"].values())
    assert info["index_type"] == "exact" and info["teacher_version"] == VERSION
    assert info["bytes_per_vector"] > DIM * 4
    args = parser.parse_args(["index", "info", "--index", str(tiny_workspace / "nothing")])
    with pytest.raises(InputError, match="cmkd index build"):
        args.func(args)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_gpu_index_gives_the_cpu_results(
    kind: str, data: np.ndarray, queries: np.ndarray, tmp_path: Path
) -> None:
    if not faiss_gpu_available():
        pytest.skip("faiss has no GPU support here: install the [gpu] extra (faiss-gpu)")
    meta = rows_meta(len(data))
    cpu = VectorIndex.build(data, meta, VERSION, IndexConfig(kind=kind, use_gpu="cpu"))
    gpu = VectorIndex.build(data, meta, VERSION, IndexConfig(kind=kind, use_gpu="gpu"))
    assert gpu.on_gpu and not cpu.on_gpu
    f = SearchFilter(modalities=("slide",), exclude_cases=("C00000",))
    for filters in (None, f):
        a = cpu.search_many(queries, 10, filters)
        b = gpu.search_many(queries, 10, filters)
        overlap = np.mean([len({h.row for h in x} & {h.row for h in y}) / 10
                           for x, y in zip(a, b, strict=True)])  # fmt: skip
        assert overlap >= 0.98
    loaded = VectorIndex.load(gpu.save(tmp_path / "gpu"))
    assert loaded.on_gpu and len(loaded) == len(data)
