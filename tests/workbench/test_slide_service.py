"""The slide service over a built tiny workspace: roles, audited views, QC and the heatmap
with its on-disk embedding cache, validated uploads and the tile report."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from core.data import pathology
from core.errors import InputError
from core.slides import UploadLimits, Viewport, embed_tiles
from workbench.errors import PermissionDenied
from workbench.roles import User
from workbench.slide_service import EMBEDDINGS_DIR, SlideRef, SlideService
from workbench.store import Store
from workbench.workspace import Workspace

DOCTOR = User("ines", "oncologist")
NURSE = User("amani", "nurse")


@pytest.fixture()
def service(built_workspace: Path) -> SlideService:
    return SlideService(Workspace(built_workspace), limits=UploadLimits(max_image_bytes=200_000))


def slide_bytes() -> bytes:
    """A tiled single-level TIFF (OpenSlide's generic-tiff) of a synthetic slide."""
    image = pathology.render_slide("LUAD", "", 2, np.random.default_rng(5), 512, 384)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image, tile=(128, 128), photometric="rgb", compression="zlib")
    return buffer.getvalue()


@pytest.fixture()
def ref(service: SlideService) -> SlideRef:
    """The first cohort slide (the tiny cohort has a few), else an uploaded one."""
    cases = service.slide_cases(DOCTOR)
    if cases:
        return service.open_case(DOCTOR, cases[0].case_id)
    upload = service.upload(DOCTOR, io.BytesIO(slide_bytes()), "generated.tiff")
    return service.open_upload(DOCTOR, upload.upload_id)


def audit(service: SlideService, action: str) -> list:
    return Store(service.ws.db_path).audit_entries(action=action)


def test_roles_are_checked_by_the_service(service: SlideService, ref: SlideRef) -> None:
    for call in (
        lambda: service.slide_cases(NURSE),
        lambda: service.open_case(NURSE, "SYN-00000"),
        lambda: service.view(NURSE, ref, Viewport(0)),
        lambda: service.heatmap(NURSE, ref, "câncer de pulmão", "pt"),
        lambda: service.upload(NURSE, io.BytesIO(b"x"), "Maria_Silva.png"),
        lambda: service.upload(None, io.BytesIO(b"x"), "Maria_Silva.png"),
    ):
        with pytest.raises(PermissionDenied):
            call()
    denied = [e for e in audit(service, "upload_slide") if e.details["outcome"] == "denied"]
    assert {e.actor for e in denied} == {"amani", "anonymous"}
    assert "Maria" not in json.dumps([e.details for e in denied])


def test_opening_a_slide_is_audited_and_views_render(service: SlideService, ref: SlideRef) -> None:
    views = audit(service, "view_slide")
    assert [(e.actor, e.target) for e in views] == [("ines", ref.case_id or ref.key)]
    reader = service.reader(DOCTOR, ref)
    view = service.view(DOCTOR, ref, Viewport(reader.levels - 1, 0.5, 0.5, 200, 100))
    assert view.image.shape == (100, 200, 3)
    assert len(audit(service, "view_slide")) == 1  # panning is not an audit event
    with pytest.raises(InputError, match="no whole-slide image"):
        no_slide = next(c for c in service._case_map().values() if not c.slide_path)
        service.open_case(DOCTOR, no_slide.case_id)


def test_heatmap_is_the_cosine_of_tissue_tiles_and_is_cached(
    service: SlideService, ref: SlideRef
) -> None:
    heatmap = service.heatmap(DOCTOR, ref, "adenocarcinoma do pulmão com EGFR", "pt")
    qc = service.qc(DOCTOR, ref)
    assert heatmap.encoder == "student"
    assert heatmap.scores.shape == (qc.grid.rows, qc.grid.cols)
    tissue = qc.qc.tissue.reshape(heatmap.scores.shape)
    assert tissue.any() and (~tissue).any()  # the slide has glass around its tissue
    assert np.isnan(heatmap.scores[~tissue]).all() and np.isfinite(heatmap.scores[tissue]).all()
    # Recomputed by hand: the teacher on each analysis tile, the student on the query.
    reader = service.reader(DOCTOR, ref)
    teacher = service._load_models().teacher
    tiles = reader.grid_tiles(qc.grid, teacher.config.tile_size)
    query, _ = service.embed_query("adenocarcinoma do pulmão com EGFR", "pt")
    expected = (embed_tiles(teacher, tiles) @ query).reshape(heatmap.scores.shape)
    np.testing.assert_allclose(heatmap.scores[tissue], expected[tissue], atol=1e-5)
    cached = list((service.ws.cache_dir / EMBEDDINGS_DIR).glob("*.npy"))
    assert len(cached) == 1
    np.save(cached[0], np.zeros((len(qc.grid), teacher.config.embed_dim), np.float32))
    assert np.nanmax(np.abs(service.heatmap(DOCTOR, ref, "pulmão", "pt").scores)) == 0.0
    with pytest.raises(InputError, match="enter a query"):
        service.heatmap(DOCTOR, ref, "   ", "pt")
    with pytest.raises(InputError, match="unsupported language"):
        service.heatmap(DOCTOR, ref, "lung", "xx")


def png() -> bytes:
    tile = pathology.render_tiles("BRCA", "", 2, np.random.default_rng(0), 1, 128)[0]
    buffer = io.BytesIO()
    Image.fromarray(tile).resize((64, 64)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("Maria_Silva.png", b"not an image at all\n", "not an image"),
        ("Maria_Silva.svs", bytes(range(256)) * 40, "not a whole-slide image"),
        ("Maria_Silva.png", bytes(200_001), "over the upload limit of 200000 bytes"),
        ("Maria_Silva.png", b"", "empty file"),
        ("Maria_Silva.exe", b"MZ", "unsupported file type '.exe'"),
    ],
)
def test_bad_uploads_are_refused_named_and_audited(
    service: SlideService, name: str, data: bytes, reason: str
) -> None:
    with pytest.raises(InputError, match=reason) as err:
        service.upload(DOCTOR, io.BytesIO(data), name)
    assert str(err.value).startswith(f"{name}: ")
    uploads = service.ws.uploads_dir
    assert not uploads.exists() or list(uploads.iterdir()) == []  # nothing kept, no temp file
    (entry,) = audit(service, "upload_slide")
    assert entry.details["outcome"] == "rejected" and "Maria" not in json.dumps(entry.details)


def test_a_tile_upload_is_stored_audited_and_matched(service: SlideService) -> None:
    data = png()
    upload = service.upload(DOCTOR, io.BytesIO(data), "Maria_Silva_tile.png")
    assert upload.kind == "image" and upload.path.read_bytes() == data
    assert upload.path.parent == service.ws.uploads_dir and "Maria" not in upload.path.name
    (entry,) = audit(service, "upload_slide")
    assert entry.target == upload.upload_id and entry.details["size_bytes"] == len(data)
    assert entry.details["file"].startswith("psn-")
    report = service.tile_report(DOCTOR, upload, k=3)
    assert report.image.shape == (64, 64, 3) and not report.qc.background[0]
    scores = [m.score for m in report.matches]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    cohort = service._case_map()
    assert all(cohort[m.case_id].cancer_type == m.cancer_type for m in report.matches)
    assert all(cohort[m.case_id].histology == m.histology for m in report.matches)
    assert all(len(m.histology) == 2 for m in report.matches)  # every slide in the index has it


def test_an_uploaded_slide_opens_by_its_id(service: SlideService) -> None:
    upload = service.upload(DOCTOR, io.BytesIO(slide_bytes()), "Maria_Silva.tiff")
    assert upload.kind == "slide" and upload.path.suffix == ".tiff"
    ref = service.open_upload(DOCTOR, upload.upload_id)
    assert service.reader(DOCTOR, ref).dimensions == (512, 384)
    with pytest.raises(InputError):
        service.open_upload(DOCTOR, "../../etc/passwd")
