"""Synthetic reference, variant drawing and VCF files (checked with pysam/htslib)."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pysam
import pytest

from core.data.genomics import (
    COMMON_SNPS,
    CONTIG_ORDER,
    PASSENGER_MEAN,
    Reference,
    annotate_drivers,
    build_reference,
    draw_variants,
    read_variants,
    translate,
    write_vcf,
)
from core.data.oncology import ClinicalProfile, DriverEvent, all_driver_events, sample_profile
from core.data.schema import CANCER_TYPES, DRIVER_GENES, VARIANT_ROLES, Variant
from core.errors import InputError

PER_TYPE = 50
# Real chromosomes of a sample of the genes (HGNC).
KNOWN_CHROMS = {
    "BRAF": "chr7", "TP53": "chr17", "KRAS": "chr12", "EGFR": "chr7", "ERBB2": "chr17",
    "ALK": "chr2", "EML4": "chr2", "TMPRSS2": "chr21", "ERG": "chr21", "ATRX": "chrX",
    "TTN": "chr2", "MUC16": "chr19", "CSMD3": "chr8", "RYR2": "chr1", "LRP1B": "chr2",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Written:
    profile: ClinicalProfile
    variants: tuple[Variant, ...]
    path: Path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return build_reference(tmp_path_factory.mktemp("reference"), seed=0)


@pytest.fixture(scope="module")
def written(reference: Reference, tmp_path_factory: pytest.TempPathFactory) -> list[Written]:
    out = tmp_path_factory.mktemp("vcf")
    rng = np.random.default_rng(11)
    cases = []
    for t in CANCER_TYPES:
        for i in range(PER_TYPE):
            profile = sample_profile(t, rng)
            variants = draw_variants(profile, reference, rng)
            if i % 5 == 0:
                variants = annotate_drivers(variants, rng)
            path = write_vcf(out / f"{t}_{i}.vcf.gz", variants, reference, f"{t}-{i}-T")
            cases.append(Written(profile, variants, path))
    return cases


def _cds(reference: Reference, gene: str) -> str:
    locus = reference.genes[gene]
    return "".join(reference.fetch(locus.chrom, s, e) for s, e in locus.exons)


def test_reference_files_and_load(reference: Reference) -> None:
    directory = reference.fasta.parent
    assert {p.name for p in directory.iterdir()} == {"reference.fa", "reference.fa.fai",
                                                     "reference.json"}  # fmt: skip
    loaded = Reference.load(directory)
    assert loaded.contigs == reference.contigs
    assert dict(loaded.genes) == dict(reference.genes)
    assert dict(loaded.sequences) == dict(reference.sequences)
    with pysam.FastaFile(str(reference.fasta)) as fa:
        assert tuple(zip(fa.references, fa.lengths, strict=True)) == reference.contigs
    names = [c for c, _ in reference.contigs]
    assert names == [c for c in CONTIG_ORDER if c in names]


def test_genes_sit_on_their_real_chromosomes(reference: Reference) -> None:
    for gene, chrom in KNOWN_CHROMS.items():
        assert reference.genes[gene].chrom == chrom
    roles = {}
    for locus in reference.genes.values():
        roles.setdefault(locus.role, set()).add(locus.gene)
    assert roles["driver"] == set(DRIVER_GENES)
    assert {"EML4", "TMPRSS2", "CD74", "KIF5B", "CCDC6"} == roles["partner"]
    assert len(roles["passenger"]) >= 200
    by_chrom: dict[str, list] = {}
    for locus in reference.genes.values():
        by_chrom.setdefault(locus.chrom, []).append((locus.start, locus.end))
    for spans in by_chrom.values():  # genes do not overlap
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False))


def test_codons_encode_the_table_residues(reference: Reference) -> None:
    for ev in all_driver_events():
        if ev.residue and ev.protein_change[0] != "X":
            assert translate(reference.codon(ev.gene, ev.residue)) == ev.protein_change[0], ev
    for snp in COMMON_SNPS:
        assert translate(reference.codon(snp.gene, snp.residue)) == snp.change[0]
    assert reference.codon("BRAF", 600) == "GTG" and reference.codon("KRAS", 12) == "GGT"
    for gene, locus in reference.genes.items():
        cds = _cds(reference, gene)
        protein = "".join(translate(cds[i : i + 3]) for i in range(0, len(cds), 3))
        assert protein[0] == "M" and protein[-1] == "*" and "*" not in protein[:-1], gene
        for start, end in locus.introns:
            intron = reference.fetch(locus.chrom, start, end)
            assert intron[:2] == "GT" and intron[-2:] == "AG", gene
    assert reference.genes["TP53"].protein_length == 393


def test_braf_v600e_is_a_t_to_a_change(reference: Reference) -> None:
    events = (DriverEvent("BRAF", "MISSENSE", "V600E"),)
    profile = ClinicalProfile("SKCM", "SKCM_BRAF", "III", 0, 50, "F", events, (), "low")
    (v,) = [v for v in draw_variants(profile, reference, np.random.default_rng(0))
            if v.role == "driver"]  # fmt: skip
    locus = reference.genes["BRAF"]
    assert (v.chrom, v.pos, v.ref, v.alt) == ("chr7", locus.cds_position(3 * 599 + 1), "T", "A")
    assert (v.hgvsp, v.consequence) == ("p.V600E", "missense_variant")


def test_every_driver_kind_becomes_records(reference: Reference) -> None:
    events = (
        DriverEvent("ALK", "FUSION", partner="EML4"), DriverEvent("CDKN2A", "DELETION"),
        DriverEvent("ERBB2", "AMPLIFICATION"), DriverEvent("MET", "SPLICE", "X1010_splice"),
        DriverEvent("EGFR", "INFRAME_DELETION", "E746_A750del"),
        DriverEvent("TP53", "FRAMESHIFT", "R209fs"), DriverEvent("TERT", "PROMOTER", "C228T"),
        DriverEvent("APC", "NONSENSE", "R1450*"), DriverEvent("BRAF", "MISSENSE", "V600K"),
    )  # fmt: skip
    profile = ClinicalProfile("LUAD", "LUAD_ALK", "IV", 2, 60, "F", events, (), "low")
    drivers = [v for v in draw_variants(profile, reference, np.random.default_rng(1))
               if v.role == "driver"]  # fmt: skip
    got = {(v.gene, v.consequence, v.hgvsp, v.alt[0] if v.alt[0] in "<[]" else "") for v in drivers}
    assert got == {
        ("ALK", "gene_fusion", "", "]"), ("EML4", "gene_fusion", "", ""),
        ("CDKN2A", "transcript_ablation", "", "<"), ("ERBB2", "transcript_amplification", "", "<"),
        ("MET", "splice_donor_variant", "", ""), ("EGFR", "inframe_deletion", "p.E746_A750del", ""),
        ("TP53", "frameshift_variant", "p.R209fs", ""), ("TERT", "upstream_gene_variant", "", ""),
        ("APC", "stop_gained", "p.R1450*", ""), ("BRAF", "missense_variant", "p.V600K", ""),
    }  # fmt: skip
    by_gene = {v.gene: v for v in drivers}
    assert len(by_gene["EGFR"].ref) == 16 and by_gene["EGFR"].alt == by_gene["EGFR"].ref[0]
    assert len(by_gene["TP53"].ref) == 2  # 1 bp deletion after its anchor base
    assert (by_gene["BRAF"].ref, by_gene["BRAF"].alt) == ("GT", "AA")  # GTG>AAG
    assert (by_gene["MET"].ref, by_gene["MET"].alt) == ("G", "T")  # c.3028+1G>T
    assert (by_gene["TERT"].ref, by_gene["TERT"].alt) == ("C", "T")
    assert by_gene["TERT"].pos == reference.genes["TERT"].cds_start - 124


def test_vcfs_open_index_and_match_the_fasta(reference: Reference, written: list[Written]) -> None:
    fasta = pysam.FastaFile(str(reference.fasta))
    for case in written:
        assert Path(f"{case.path}.tbi").is_file()
        with pysam.VariantFile(str(case.path)) as vcf:
            assert "CSQ" in vcf.header.info and "ANNOTATION_LANG" in vcf.header.info
            records = list(vcf)
            assert len(records) == len(case.variants)
            for r in records:
                assert fasta.fetch(r.chrom, r.pos - 1, r.pos - 1 + len(r.ref)) == r.ref
            ids = {r.id: r for r in records if r.info.get("SVTYPE") == "BND"}
            for r in ids.values():
                (mate,) = r.info["MATEID"]
                assert ids[mate].info["MATEID"] == (r.id,)
            first = records[0]
            hits = list(vcf.fetch(first.chrom, first.pos - 1, first.pos))
            assert (first.chrom, first.pos) in {(h.chrom, h.pos) for h in hits}
            last = records[-1]
            assert list(vcf.fetch(last.chrom, last.pos - 1, last.stop))[-1].pos == last.pos


def _parse_tbi(path: str) -> tuple:
    """Header, then per reference its bins (as a dict) and linear index."""
    data = gzip.decompress(Path(path).read_bytes())
    header = struct.unpack_from("<8i", data, 4)
    offset, refs = 36 + header[7], []
    for _ in range(header[0]):
        (n_bin,), offset = struct.unpack_from("<i", data, offset), offset + 4
        bins = {}
        for _ in range(n_bin):
            b, n_chunk = struct.unpack_from("<Ii", data, offset)
            bins[b] = struct.unpack_from(f"<{2 * n_chunk}Q", data, offset + 8)
            offset += 8 + 16 * n_chunk
        (n_intv,) = struct.unpack_from("<i", data, offset)
        refs.append((bins, struct.unpack_from(f"<{n_intv}Q", data, offset + 4)))
        offset += 4 + 8 * n_intv
    return header, refs, data[offset:]


def test_index_equals_what_htslib_builds(
    reference: Reference, written: list[Written], tmp_path: Path
) -> None:
    rng = np.random.default_rng(5)
    profiles = [sample_profile("SKCM", rng) for _ in range(120)]
    many = [v for p in profiles for v in draw_variants(p, reference, rng)]
    unique = list({(v.chrom, v.pos, v.alt): v for v in many}.values())
    big = write_vcf(tmp_path / "big.vcf.gz", unique, reference, "many")
    assert len(gzip.decompress(big.read_bytes())) > 2 * 0xFF00  # spans several BGZF blocks
    for path in [big] + [c.path for c in written[::40]]:
        copy = tmp_path / "htslib.vcf.gz"
        shutil.copy(path, copy)
        pysam.tabix_index(str(copy), preset="vcf", force=True)
        assert _parse_tbi(f"{path}.tbi") == _parse_tbi(f"{copy}.tbi"), path


def test_read_variants_round_trips(written: list[Written]) -> None:
    for case in written:
        expected = tuple(dataclasses.replace(v, role="") for v in case.variants)
        assert read_variants(case.path) == expected


def test_variant_mix_is_plausible(written: list[Written]) -> None:
    for case in written:
        roles = [v.role for v in case.variants]
        assert set(roles) <= set(VARIANT_ROLES) and 5 <= len(roles) <= 70
        assert {d.gene for d in case.profile.drivers} <= {
            v.gene for v in case.variants if v.role == "driver"
        }
        for v in case.variants:
            assert 30 <= v.depth <= 500 and 0 < v.vaf <= 1
            if v.role == "benign":
                assert v.vaf > 0.9 or 0.2 < v.vaf < 0.8
            if v.role == "passenger":
                assert v.consequence in ("missense_variant", "synonymous_variant",
                                         "intron_variant")  # fmt: skip
    snvs = [v.vaf for c in written for v in c.variants if v.role == "driver" and v.alt[0] != "<"]
    passengers = [v.vaf for c in written for v in c.variants if v.role == "passenger"]
    assert 0.2 < np.median(snvs) < 0.5 and np.median(passengers) < np.median(snvs)
    assert any(v.hgvsp == "p.P72R" and v.role == "benign" for c in written for v in c.variants)


def test_passenger_count_follows_tmb(written: list[Written]) -> None:
    assert set(PASSENGER_MEAN) == set(CANCER_TYPES)

    def mean_passengers(pred) -> float:
        counts = [sum(v.role == "passenger" for v in c.variants) for c in written if pred(c)]
        return float(np.mean(counts))

    high = mean_passengers(lambda c: c.profile.tmb_class == "high")
    thca = mean_passengers(lambda c: c.profile.cancer_type == "THCA")
    assert high > 3 * thca


def test_benign_records_carry_population_frequency(written: list[Written]) -> None:
    for case in written[::25]:
        with pysam.VariantFile(str(case.path)) as vcf:
            for r in vcf:
                fields = r.info["CSQ"][0].split("|")
                benign = fields[5] != ""
                assert benign == (r.id or "").startswith("rs")
                assert not benign or float(fields[5]) >= 0.01


def test_outputs_are_deterministic(reference: Reference, tmp_path: Path) -> None:
    again = build_reference(tmp_path / "ref", seed=0)
    for name in ("reference.fa", "reference.json"):
        first = (reference.fasta.parent / name).read_bytes()
        assert (tmp_path / "ref" / name).read_bytes() == first
    other = build_reference(tmp_path / "other", seed=1)
    assert dict(other.sequences) != dict(reference.sequences)

    def one(rng_seed: int, path: Path) -> bytes:
        rng = np.random.default_rng(rng_seed)
        variants = annotate_drivers(draw_variants(sample_profile("LUAD", rng), again, rng), rng)
        write_vcf(path, variants, again, "S-T")
        return path.read_bytes() + Path(f"{path}.tbi").read_bytes()

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert one(7, tmp_path / "a" / "x.vcf.gz") == one(7, tmp_path / "b" / "x.vcf.gz")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["x.vcf.gz", "x.vcf.gz.tbi"]


def test_annotations_are_percent_encoded_utf8(reference: Reference, tmp_path: Path) -> None:
    events = (DriverEvent("ALK", "FUSION", partner="EML4"), DriverEvent("KRAS", "MISSENSE", "G12C"))
    profile = ClinicalProfile("LUAD", "LUAD_ALK", "IV", 2, 60, "F", events, (), "low")
    rng = np.random.default_rng(4)
    plain = draw_variants(profile, reference, rng)
    langs = set()
    for _ in range(8):
        annotated = annotate_drivers(plain, rng)
        drivers = [v for v in annotated if v.role == "driver"]
        assert len({v.annotation_lang for v in drivers}) == 1 and all(v.annotation for v in drivers)
        langs |= {v.annotation_lang for v in drivers}
        fusion = [v.annotation for v in drivers if v.consequence == "gene_fusion"]
        assert len(fusion) == 2 and fusion[0] == fusion[1] and "EML4" in fusion[0]
        assert all(not v.annotation for v in annotated if v.role != "driver")
    assert langs == {"de", "zh"}

    tricky = "Befund; a=b, c|d 100% ok: 激活突变 Kinasedomäne"
    variants = tuple(dataclasses.replace(v, annotation=tricky, annotation_lang="de")
                     if v.gene == "KRAS" else v for v in plain)  # fmt: skip
    path = write_vcf(tmp_path / "t.vcf.gz", variants, reference, "T")
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    assert "Befund%3B%20a%3Db%2C%20c%7Cd%20100%25%20ok%3A%20激活突变%20Kinasedomäne" in text
    assert tricky in {v.annotation for v in read_variants(path)}


def test_write_vcf_rejects_bad_input(reference: Reference, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good = draw_variants(sample_profile("BRCA", rng), reference, rng)
    v = good[0]
    wrong_ref = dataclasses.replace(v, ref="A" if v.ref[0] != "A" else "C")
    for bad in ((wrong_ref,), (dataclasses.replace(v, chrom="chrY"),)):
        with pytest.raises(InputError):
            write_vcf(tmp_path / "bad.vcf.gz", bad, reference, "S")
    with pytest.raises(InputError):
        write_vcf(tmp_path / "bad.vcf.gz", good, reference, "two words")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "junk.vcf.gz").write_bytes(gzip.compress(b"chr1\t1\n"))
    with pytest.raises(InputError):
        read_variants(tmp_path / "junk.vcf.gz")
