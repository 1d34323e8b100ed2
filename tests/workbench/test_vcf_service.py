"""The VCF service (role, size limits, gzip bombs, pseudonymised audit, worker process) and the
`cmkd vcf` command (exit codes, outputs)."""

from __future__ import annotations

import gzip
import json
import os
import re
import sqlite3
import stat
import tempfile
import time
from pathlib import Path

import pytest

from core.errors import InputError
from core.genomics.reader import read_all
from core.genomics.records import VcfError
from workbench import cli, vcf_service
from workbench.errors import PermissionDenied
from workbench.roles import User
from workbench.store import Store, pseudonym
from workbench.vcf_service import (
    UploadLimits,
    interpret_upload,
    list_samples,
    start_upload,
    upload_samples,
)
from workbench.workspace import Workspace, workspace_salt

SAMPLE = "Maria_Silva_TUMOR"  # a sample name that is personal data
COUNSELLOR = User("ana", "genetic_counsellor")
HEADER = """\
##fileformat=VCFv4.2
##contig=<ID=7,length=159138663>
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. \
Format: Allele|Consequence|IMPACT|SYMBOL|HGVSp|gnomAD_AF">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{tumor}\tMaria_Silva_NORMAL
"""
BRAF = (
    "7\t140453136\t.\tA\tT\t50\tPASS\tCSQ=T|missense_variant|MODERATE|BRAF|p.V600E|\tGT\t0/1\t0/0\n"
)
PASSENGER = (
    "7\t{pos}\t.\tC\tT\t50\tPASS\tCSQ=T|synonymous_variant|LOW|BRAF|p.L{n}=|\tGT\t0/1\t0/0\n"
)


def vcf_text(n_passengers: int = 3) -> str:
    passengers = "".join(PASSENGER.format(pos=1000 + i, n=10 + i) for i in range(n_passengers))
    return HEADER.format(tumor=SAMPLE) + passengers + BRAF


@pytest.fixture()
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture()
def store(ws: Workspace) -> Store:
    return Store(ws.db_path)


def audit_dump(store: Store) -> str:
    with sqlite3.connect(store.path) as conn:
        return "\n".join(repr(row) for row in conn.execute("SELECT * FROM audit"))


def test_upload_is_interpreted_in_a_worker_and_audited_with_pseudonyms(ws, store) -> None:
    data = vcf_text().encode()
    job = start_upload(COUNSELLOR, data, f"{SAMPLE}.vcf", store, ws, "SKCM")
    report = job.result(timeout=120)
    assert report.sample == SAMPLE and report.file_name == f"{SAMPLE}.vcf"
    assert [v.gene for v in report.actionable] == ["BRAF"] and report.actionable[0].tier == "I"
    progress = job.progress()
    assert progress.records == 4 and progress.fraction == 1.0
    annotated = job.annotated_vcf
    assert annotated is not None and read_all(annotated)[1][-1].info["CMKD_TIER"] == "I"
    assert not (job.folder / "upload").exists()  # the upload copy is gone once interpreted
    job.cleanup()
    assert not job.folder.exists()

    salt = workspace_salt(ws)
    entries = store.audit_entries()
    assert [e.action for e in entries] == ["interpret_vcf", "upload_vcf"]
    assert {e.target for e in entries} == {pseudonym(SAMPLE, salt)}
    assert entries[1].details["file"] == pseudonym(f"{SAMPLE}.vcf", salt)
    assert entries[0].details["outcome"] == "ok" and entries[0].details["n_actionable"] == 1
    assert "Maria" not in audit_dump(store)  # neither sample nor file name in clear
    assert store.verify_audit() == 2


def test_workspace_salt_is_private_and_stable(ws) -> None:
    salt = workspace_salt(ws)
    assert len(salt) == 64 and workspace_salt(ws) == salt
    mode = (ws.root / "pseudonym.salt").stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert workspace_salt(Workspace(ws.root.parent / "other")) != salt


def test_roles_are_enforced_by_the_service(ws, store) -> None:
    data = vcf_text().encode()
    with pytest.raises(PermissionDenied, match="nurse"):
        interpret_upload(User("joe", "nurse"), data, "x.vcf", store, ws)
    with pytest.raises(PermissionDenied, match="sign in"):
        interpret_upload(None, data, "x.vcf", store, ws)
    outcomes = [(e.actor, e.details["outcome"]) for e in store.audit_entries()]
    assert outcomes == [("anonymous", "denied"), ("joe", "denied")]


def test_size_limit_and_bad_input_are_refused_before_any_work(ws, store) -> None:
    data = vcf_text().encode()
    with pytest.raises(InputError, match=r"big\.vcf: \d+ bytes is over the upload limit of 100"):
        start_upload(COUNSELLOR, data, "big.vcf", store, ws, limits=UploadLimits(max_bytes=100))
    with pytest.raises(InputError, match="unknown tumour type"):
        start_upload(COUNSELLOR, data, "x.vcf", store, ws, tumor_type="NOPE")
    with pytest.raises(VcfError, match=r"^x\.vcf: sample 'ghost' not found"):
        start_upload(COUNSELLOR, data, "x.vcf", store, ws, sample="ghost")
    rejected = store.audit_entries()
    assert [e.details["outcome"] for e in rejected] == ["rejected"] * 3
    assert "ghost" not in audit_dump(store) and "Maria" not in audit_dump(store)


def test_gzip_bomb_is_stopped_at_the_uncompressed_cap(ws, store) -> None:
    data = gzip.compress(vcf_text(n_passengers=20000).encode())  # ~1.5 MB of text, ~50 KB
    limits = UploadLimits(max_bytes=len(data) + 1, uncompressed_factor=2)
    with pytest.raises(VcfError, match=r"^bomb\.vcf\.gz: file expands beyond \d+ bytes$"):
        interpret_upload(COUNSELLOR, data, "bomb.vcf.gz", store, ws, limits=limits)
    assert store.audit_entries()[0].details == {
        "outcome": "rejected", "error": "VcfError", "error_line": None,
    }  # fmt: skip


def test_bad_record_is_reported_with_the_upload_name_and_line(ws, store) -> None:
    data = (vcf_text() + "7\tnot-a-position\t.\tA\tT\t.\t.\t.\tGT\t0/1\t0/0\n").encode()
    with pytest.raises(VcfError, match=r"^broken\.vcf: line 10: "):
        interpret_upload(COUNSELLOR, data, "broken.vcf", store, ws)
    assert store.audit_entries()[0].details["error_line"] == 10


def test_sample_picker_lists_tumour_and_normal(tmp_path) -> None:
    path = tmp_path / "pair.vcf"
    path.write_text(vcf_text())
    samples = list_samples(path)
    assert samples.names == (SAMPLE, "Maria_Silva_NORMAL")
    assert (samples.tumor, samples.normal, samples.default) == (SAMPLE, "Maria_Silva_NORMAL",
                                                                SAMPLE)  # fmt: skip
    assert upload_samples(path.read_bytes(), "pair.vcf") == samples
    with pytest.raises(VcfError, match=r"^odd\.vcf: "):
        upload_samples(b"not a vcf at all\n", "odd.vcf")


# ------------------------------------------------------------------------------ cmkd vcf


@pytest.fixture()
def cmkd(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """cli.main with the vcf command registered, as the lead's FEATURE_COMMANDS will, over an
    empty workspace (no models)."""
    monkeypatch.setattr(cli, "FEATURE_COMMANDS", ("workbench.commands.vcf",))
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "empty-ws"))
    return cli.main


def test_cmkd_vcf_outputs(cmkd, tmp_path, capsys) -> None:
    path = tmp_path / "in.vcf"
    path.write_text(vcf_text())
    assert cmkd(["vcf", str(path), "--tumor-type", "SKCM", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["sample"] == SAMPLE and data["actionable"][0]["gene"] == "BRAF"
    models = tmp_path / "empty-ws" / "models"
    assert data["genomic_encoder_score"] == f"not available: no teacher in {models / 'teacher'}"
    assert data["annotation_reader"] == f"not available: no student in {models / 'student'}"
    assert all(v["score"] is None for v in data["variants"])
    assert cmkd(["vcf", str(path), "--tsv", "--panel-mb", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("key\t") and len(lines) == 5
    out = tmp_path / "out.vcf.gz"
    assert cmkd(["vcf", str(path), "--tumor-type", "skcm", "--vcf-out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "tier I: BRAF V600E" in table and "TMB: 0.91 mutations/Mb" in table
    assert read_all(out)[1][-1].info["CMKD_CLASS"] == "pathogenic"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (vcf_text().encode()[: -len(BRAF) + 12], r"^error: bad\.vcf: line 9: "),  # cut short
        (gzip.compress(vcf_text().encode())[:-12], r"^error: bad\.vcf: "),  # truncated gzip
    ],
)
def test_cmkd_vcf_invalid_input_exits_2_with_one_line(cmkd, tmp_path, capsys, content,
                                                      expected) -> None:  # fmt: skip
    path = tmp_path / "bad.vcf"
    path.write_bytes(content)
    assert cmkd(["vcf", str(path), "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.replace(str(tmp_path) + "/", "")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.match(expected, err), err
    assert captured.out == ""


def test_stale_job_folders_are_swept_at_the_next_upload(ws, store) -> None:
    stale = Path(tempfile.mkdtemp(prefix=vcf_service.FOLDER_PREFIX))
    fresh = Path(tempfile.mkdtemp(prefix=vcf_service.FOLDER_PREFIX))
    old = time.time() - vcf_service.STALE_AFTER_S - 60
    os.utime(stale, (old, old))
    interpret_upload(COUNSELLOR, vcf_text().encode(), "x.vcf", store, ws)
    assert not stale.exists() and fresh.exists()
    fresh.rmdir()


def test_a_tampered_worker_report_is_refused_not_unpickled(ws, store) -> None:
    import pickle

    from core.errors import CmkdError
    from workbench.vcf_service import REPORT_NAME

    job = start_upload(COUNSELLOR, vcf_text().encode(), f"{SAMPLE}.vcf", store, ws, "SKCM")
    job._process.wait(timeout=120)
    report = job.folder / REPORT_NAME
    signed = report.read_bytes()
    report.write_bytes(signed[:32] + pickle.dumps(("not", "ours")))
    with pytest.raises(CmkdError, match="integrity"):
        job.result()
    job.cleanup()


# ------------------------------------------------------------------------------ models


def test_the_worker_and_cmkd_use_the_workspace_models(built_workspace, capsys,
                                                      monkeypatch) -> None:  # fmt: skip
    ws = Workspace.from_env()
    monkeypatch.setattr(cli, "FEATURE_COMMANDS", ("workbench.commands.vcf",))
    # without the probe the scorer says how to build it; the student reads the text anyway
    text = vcf_text(1).replace("p.V600E|", "p.V600E|;NOTE=BRAF%20pathogen;NOTE_LANG=de")
    text = text.replace(
        "#CHROM",
        '##INFO=<ID=NOTE,Number=1,Type=String,Description="x">\n'
        '##INFO=<ID=NOTE_LANG,Number=1,Type=String,Description="x">\n#CHROM',
    )
    report = interpret_upload(COUNSELLOR, text.encode(), "t.vcf", Store(ws.db_path), ws, "SKCM")
    assert report.variant_scorer.startswith("not available: no variant probe")
    assert "cmkd vcf-probe" in report.variant_scorer
    assert report.annotation_reader.startswith("available: ")
    braf = next(v for v in report.variants if v.protein_change == "V600E")
    assert "GENE:BRAF=BRAF" in braf.annotation_readings[0].entities
    assert "supports pathogenic (pathogen)" in braf.annotation_reading
    assert cli.main(["vcf-probe", "--json"]) == 0
    probe = json.loads(capsys.readouterr().out)
    assert probe["kind"] == "variant_probe" and set(probe["metrics"]) == {"train", "val", "test"}
    path = ws.root / "in.vcf"
    path.write_text(text)
    assert cli.main(["vcf", str(path), "--tumor-type", "SKCM", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["genomic_encoder_score"].startswith("available: teacher-")
    assert all(0.0 <= v["score"] <= 1.0 for v in data["variants"])
    assert cli.main(["vcf", str(path), "--no-models", "--json"]) == 0
    rules_only = json.loads(capsys.readouterr().out)
    assert rules_only["genomic_encoder_score"] == "not available"
