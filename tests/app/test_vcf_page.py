"""AppTest of the VCF page: upload, sample and tumour type, worker progress, results, roles."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from workbench.i18n import catalog
from workbench.roles import User

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "vcf.py")
TIMEOUT_S = 60  # the first run imports plotly; the worker process starts on first use
COUNSELLOR = User("gina", "genetic_counsellor")
VCF = """\
##fileformat=VCFv4.2
##contig=<ID=7,length=159138663>
##contig=<ID=17,length=81195210>
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. \
Format: Allele|Consequence|IMPACT|SYMBOL|HGVSp|gnomAD_AF">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tcase7_normal\tcase7_tumor
7\t140453136\t.\tA\tT\t50\tPASS\tCSQ=T|missense_variant|MODERATE|BRAF|p.V600E|\tGT:AF\t\
0/0:0\t0/1:0.41
17\t7579472\trs1042522\tG\tC\t50\tPASS\tCSQ=C|missense_variant|MODERATE|TP53|p.P72R|0.6\t\
GT:AF\t0/1:0.5\t0/1:0.48
17\t7579600\t.\tC\tT\t50\tPASS\tCSQ=T|synonymous_variant|LOW|TP53|p.P50=|\tGT:AF\t0/0:0\t\
0/1:0.2
"""


@pytest.fixture()
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["user"] = COUNSELLOR
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, data: bytes, name: str = "case7.vcf") -> AppTest:
    at.file_uploader(key="vcf.upload").set_value((name, data, "text/plain")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_job(at: AppTest) -> AppTest:
    job = at.session_state["vcf.job"]
    deadline = time.monotonic() + TIMEOUT_S
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job.done()
    at.run()  # the fragment's poll would rerun the page; here the test does
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_interpret_and_read_the_results(app: AppTest) -> None:
    en = catalog("en")
    assert app.title[0].value == en["vcf.title"]
    assert any(en["vcf.disclaimer"] in i.value for i in app.info)
    at = upload(app, VCF.encode())
    sample = at.selectbox(key="vcf.sample")
    assert sample.options == ["case7_normal (normal)", "case7_tumor (tumour)"]
    assert sample.value == "case7_tumor"  # the detected tumour is the default
    at.selectbox(key="vcf.tumor_type").set_value("SKCM")
    at.number_input(key="vcf.panel_mb").set_value(2.0)
    at.button(key="vcf.run").click().run()
    at = wait_for_job(at)

    metrics = {m.label: m.value for m in at.metric}
    assert metrics[en["vcf.metric_variants"]] == "3"
    assert metrics[en["vcf.metric_actionable"]] == "1"
    assert metrics[en["vcf.metric_tmb"]] == "0.5"  # BRAF V600E over 2 Mb
    # AppTest exposes no dataframe keys: actionable findings, variants, then CIViC evidence
    actionable, table, evidence_rows = (d.value for d in at.dataframe)
    assert list(table[en["vcf.col_gene"]]) == ["BRAF", "TP53", "TP53"]
    assert list(table[en["vcf.col_tier"]]) == ["Tier I", "Tier IV", "Tier III"]
    assert actionable[en["vcf.col_gene"]].tolist() == ["BRAF"]
    assert "A" in set(evidence_rows[en["vcf.col_level"]])
    titles = {json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")}
    assert titles == {en["vcf.chart_consequence"], en["vcf.chart_oncogenicity"],
                      en["vcf.chart_vaf"]}  # fmt: skip
    assert len(at.get("download_button")) == 3
    evidence = at.expander[-1]
    assert "BRAF V600E" in evidence.label
    assert any("`OS1`" in m.value for m in evidence.markdown)

    # filtering by class narrows the table; the evidence picker follows
    at.multiselect(key="vcf.filter_class").set_value(["benign"]).run()
    assert list(at.dataframe[1].value[en["vcf.col_gene"]]) == ["TP53"]
    assert "P72R" in at.expander[-1].label
    at.session_state["vcf.job"].cleanup()


def test_invalid_file_shows_an_error_line(app: AppTest) -> None:
    at = upload(app, b"##fileformat=VCFv4.2\nthis is not a header\n", "broken.vcf")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "broken.vcf" in errors[0]
    assert not at.get("download_button")


def test_roles_without_permission_see_no_upload(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["user"] = User("joe", "nurse")
    at.run()
    assert not at.exception
    assert at.warning[0].value == catalog("en")["vcf.not_allowed"].format(role="nurse")
    assert not at.get("file_uploader")


def test_page_in_portuguese(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CMKD_WORKSPACE", str(tmp_path / "ws"))
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["ui_lang"] = "pt"
    at.session_state["user"] = COUNSELLOR
    at.run()
    assert at.title[0].value == catalog("pt")["vcf.title"] != catalog("en")["vcf.title"]


def test_an_example_from_the_cohort_is_interpreted_with_its_tumour_type(tiny_workspace) -> None:
    from workbench.vcf_service import example_vcfs
    from workbench.workspace import Workspace

    examples = example_vcfs(Workspace(tiny_workspace))
    assert examples, "the tiny cohort has held-out cases with drivers in the example types"
    assert all(e.path.exists() and e.drivers for e in examples)
    en = catalog("en")
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT_S)
    at.session_state["user"] = COUNSELLOR
    at.run()
    options = at.selectbox(key="vcf.example_choice").options
    assert [o.split(" · ")[0] for o in options] == [e.case_id for e in examples]
    chosen = examples[-1]
    at.selectbox(key="vcf.example_choice").set_value(chosen.case_id).run()
    at.button(key="vcf.example_use").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(chosen.filename in i.value for i in at.info)
    assert at.selectbox(key="vcf.tumor_type").value == chosen.tumor_type
    at.button(key="vcf.run").click().run()
    at = wait_for_job(at)
    texts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert any(chosen.filename in text for text in texts)
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics[en["vcf.metric_variants"]]) > 0
    at.session_state["vcf.job"].cleanup()


def test_no_examples_without_a_cohort(app: AppTest) -> None:
    assert not [s for s in app.get("selectbox") if s.key == "vcf.example_choice"]
