"""The VCF page in a real Chromium: upload a VCF, interpret it, download the TSV.

Signs in as a genetic counsellor through the shell and opens the page from the navigation.
Needs Debian's Chromium at /usr/bin/chromium; skips with instructions when it is missing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.i18n import catalog

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-artifacts" / "vcf_results.png"
UI_TIMEOUT_MS = 60_000  # first run imports plotly; the worker process imports pysam
VCF = """\
##fileformat=VCFv4.2
##contig=<ID=7,length=159138663>
##contig=<ID=17,length=81195210>
##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations from Ensembl VEP. \
Format: Allele|Consequence|IMPACT|SYMBOL|HGVSp|gnomAD_AF">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tcase9_tumor
7\t140453136\t.\tA\tT\t50\tPASS\tCSQ=T|missense_variant|MODERATE|BRAF|p.V600E|\tGT\t0/1
17\t7579472\trs1042522\tG\tC\t50\tPASS\tCSQ=C|missense_variant|MODERATE|TP53|p.P72R|0.6\tGT\t0/1
"""

pytestmark = pytest.mark.browser


@pytest.fixture()
def app_url(streamlit_server, tmp_path: Path, make_account) -> str:
    make_account(tmp_path / "ws", "gina", "genetic_counsellor")
    return streamlit_server("streamlit_app.py", tmp_path / "ws")


def test_upload_a_vcf_and_download_the_tsv(open_app, app_url: str, sign_in, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    en = catalog("en")
    vcf = tmp_path / "case9.vcf"
    vcf.write_text(VCF)
    page = open_app(app_url, UI_TIMEOUT_MS)
    sign_in(page, "gina")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=en["nav.vcf"]).click()
    expect(page.get_by_role("heading", name=en["vcf.title"], level=1)).to_be_visible()

    page.get_by_test_id("stFileUploader").locator('input[type="file"]').set_input_files(str(vcf))
    sample = page.get_by_role("combobox", name=en["vcf.sample"])
    expect(sample).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(sample).to_have_value("case9_tumor (tumour)")
    page.get_by_role("button", name=en["vcf.run"]).click()

    header = page.get_by_role("heading", name=en["vcf.actionable_header"])
    expect(header).to_be_visible(timeout=UI_TIMEOUT_MS)
    tsv_button = page.get_by_test_id("stDownloadButton").filter(has_text=en["vcf.download_tsv"])
    with page.expect_download() as info:
        tsv_button.click()
    download = info.value
    assert download.suggested_filename == "case9.cmkd.tsv"
    rows = [line.split("\t") for line in Path(download.path()).read_text().splitlines()]
    assert rows[0][:3] == ["key", "chrom", "pos"] and len(rows) == 3
    by_gene = {r[rows[0].index("gene")]: r for r in rows[1:]}
    assert by_gene["BRAF"][rows[0].index("class")] == "pathogenic"
    assert by_gene["TP53"][rows[0].index("tier")] == "IV"

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
