"""Synthetic reference genome, per-case somatic variants and their VCF files.

The reference has one short contig per real chromosome that holds genes (chr1..chr22,
chrX). Every driver gene of `schema.DRIVER_GENES`, the 5' fusion partners the oncology
tables use, and ~200 real passenger genes sit on their real chromosome; the order of genes
within a contig and all sequence are synthetic. All genes are on the + strand. A gene is a
300 bp promoter flank, a coding sequence split into exons by GT...AG introns, and a 3' flank.
Driver genes and partners have their real protein length, passengers a random one. Codons
are random sense codons except at the residues the oncology tables and the common-SNP table
name, which encode the real reference amino acid (with the real codon for a few famous
hotspots), so protein position p starts at CDS offset 3*(p-1) and "BRAF V600E" is the T>A
change that turns GTG into GAG.

pysam is used only to index and read the FASTA; VCFs are bgzipped and tabix-indexed here.
"""

from __future__ import annotations

import bisect
import gzip
import json
import os
import re
import struct
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote

import numpy as np
import pysam

from core.data.oncology import ONCOGENES, ClinicalProfile, DriverEvent, all_driver_events
from core.data.schema import DRIVER_GENES, Variant
from core.errors import CohortError, ConfigError, InputError
from core.io import write_atomic

FASTA_NAME = "reference.fa"
META_NAME = "reference.json"
CONTIG_ORDER: tuple[str, ...] = tuple(f"chr{i}" for i in range(1, 23)) + ("chrX",)

# ------------------------------------------------------------------------- gene tables

# Canonical UniProt protein lengths (aa) and chromosomes of the driver genes and of the 5'
# fusion partners (EML4-ALK, TMPRSS2-ERG, CD74-ROS1, KIF5B-RET, CCDC6-RET).
_DRIVER_LOCI: Mapping[str, tuple[str, int]] = MappingProxyType({
    "TP53": ("chr17", 393), "PIK3CA": ("chr3", 1068), "ERBB2": ("chr17", 1255),
    "GATA3": ("chr10", 443), "CDH1": ("chr16", 882), "PTEN": ("chr10", 403),
    "ESR1": ("chr6", 595), "BRCA1": ("chr17", 1863), "BRCA2": ("chr13", 3418),
    "KRAS": ("chr12", 189), "EGFR": ("chr7", 1210), "ALK": ("chr2", 1620),
    "BRAF": ("chr7", 766), "STK11": ("chr19", 433), "KEAP1": ("chr19", 624),
    "MET": ("chr7", 1390), "ROS1": ("chr6", 2347), "RET": ("chr10", 1114),
    "NRAS": ("chr1", 189), "NF1": ("chr17", 2839), "CDKN2A": ("chr9", 156),
    "APC": ("chr5", 2843), "SMAD4": ("chr18", 552), "TERT": ("chr5", 1132),
    "IDH1": ("chr2", 414), "ATRX": ("chrX", 2492), "SPOP": ("chr17", 374),
    "FOXA1": ("chr14", 472), "ERG": ("chr21", 486), "HRAS": ("chr11", 189),
    "VHL": ("chr3", 213), "PBRM1": ("chr3", 1689), "SETD2": ("chr3", 2564),
    "BAP1": ("chr3", 729), "CTNNB1": ("chr3", 781), "ARID1A": ("chr1", 2285),
    "AXIN1": ("chr16", 862), "NOTCH1": ("chr9", 2555), "FBXW7": ("chr4", 707),
    "NFE2L2": ("chr2", 605), "PIK3R1": ("chr5", 724), "MDM2": ("chr12", 491),
    "CDK4": ("chr12", 303), "RB1": ("chr13", 928), "KMT2D": ("chr12", 5537),
    "ATM": ("chr11", 3056), "MLH1": ("chr3", 756), "KIT": ("chr4", 976),
    "SOX2": ("chr3", 317), "FGFR3": ("chr4", 806),
})  # fmt: skip
_PARTNER_LOCI: Mapping[str, tuple[str, int]] = MappingProxyType({
    "EML4": ("chr2", 981), "TMPRSS2": ("chr21", 492), "CD74": ("chr5", 296),
    "KIF5B": ("chr10", 963), "CCDC6": ("chr10", 474),
})  # fmt: skip

# Real HGNC symbols on their real chromosomes: long genes that collect passenger mutations
# in TCGA exomes (TTN, MUC16, CSMD3, ...) and cancer-adjacent genes not used as drivers here.
_PASSENGERS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "chr1": ("RYR2", "USH2A", "FLG", "OBSCN", "SPTA1", "HMCN1", "CSMD2", "DNAH14", "COL11A1",
             "MACF1", "ASPM", "ABCA4", "CACNA1E", "OR2T4", "NLRP3", "PAPPA2", "TNR", "UBR4",
             "HEATR1", "HRNR", "IGFN1", "NOTCH2", "TCHH", "SPEN", "JAK1", "MTOR", "ELF3",
             "NTRK1"),
    "chr2": ("TTN", "LRP1B", "XIRP2", "APOB", "NEB", "DNAH7", "DNAH6", "COL6A3", "CNTNAP5",
             "NRXN1", "SCN1A", "SCN7A", "SCN9A", "ERBB4", "THSD7B", "BIRC6", "LRP2", "OTOF",
             "SPEG", "SPHKAP", "ZNF804A", "CTNNA2", "NYAP2", "SLC8A1", "ACVR2A", "CASP8"),
    "chr3": ("XIRP1", "SCN11A", "SCN10A", "SCN5A", "DNAH1", "EPHA3", "EPHA6", "EPHB1",
             "KALRN", "ROBO2", "MUC4", "SI", "POLQ", "TP63", "PIK3CB"),
    "chr4": ("FRAS1", "FAT4", "FAT1", "TENM3", "ANK2", "EPHA5", "SLIT2", "KDR", "PDGFRA",
             "ALB"),
    "chr5": ("DNAH5", "ADGRV1", "TENM2", "SLIT3", "FAT2", "VCAN", "HCN1", "PRDM9", "CTNND2",
             "FBN2", "TRIO", "NSD1", "FLT4", "PDGFRB", "FGFR4", "MAP3K1"),
    "chr6": ("SYNE1", "DST", "PKHD1", "LAMA2", "DNAH8", "COL12A1", "EPHA7", "KCNQ5", "NOTCH4",
             "ARID1B", "MDN1", "ZNF292", "UTRN", "EEF1A1"),
    "chr7": ("PCLO", "MUC17", "MUC12", "DNAH11", "KMT2C", "CNTNAP2", "AKAP9", "ABCA13",
             "GRM3", "THSD7A", "RELN", "TRRAP", "MGAM", "PTPRZ1", "PLXNA4", "RAC1"),
    "chr8": ("CSMD3", "CSMD1", "ZFHX4", "VPS13B", "PLEC", "RP1", "TG", "PREX2", "CHD7", "MYC",
             "FGFR1", "COL22A1", "PKHD1L1", "UNC5D", "KCNB2", "PXDNL", "RIMS2", "ST18"),
    "chr9": ("PTPRD", "CACNA1B", "SVEP1", "TRPM3", "VPS13A", "ZNF462", "TNC", "TSC1", "JAK2",
             "GNAQ", "PPP6C", "CD274", "TAF1L"),
    "chr10": ("PCDH15", "CDH23", "ANK3", "CUBN", "FGFR2", "TCF7L2", "SORCS1", "SORCS3",
              "WDFY4"),
    "chr11": ("FAT3", "MUC5B", "MUC2", "NELL1", "KMT2A", "CCND1", "OR4C15"),
    "chr12": ("DNAH10", "GRIN2B", "LRRK2", "VWF", "WNK1", "POLE", "CHD4", "ARID2", "TBX3",
              "ERBB3", "NAV3", "STAB2"),
    "chr13": ("SACS", "NALCN", "NBEA", "MYCBP2", "FLT1"),
    "chr14": ("AHNAK2", "NRXN3", "MYH7", "ZFP36L1", "TRAF3", "AKT1"),
    "chr15": ("RYR3", "HERC2", "FBN1", "IGF1R", "IDH2", "B2M", "NTRK3", "TLN2", "UNC13C",
              "NPAP1"),
    "chr16": ("HYDIN", "DNAH3", "GRIN2A", "ZFHX3", "CREBBP", "TSC2", "PALB2", "CBFB",
              "SRRM2", "SALL1"),
    "chr17": ("MYH1", "MYH2", "MYH4", "MYH8", "DNAH9", "DNAH2", "DNAH17", "RNF43", "SOX9",
              "CDK12", "RAD51C", "BRIP1", "MAP2K4", "NCOR1"),
    "chr18": ("DCC", "LAMA1", "PIEZO2", "SETBP1", "ZNF521"),
    "chr19": ("MUC16", "RYR1", "CACNA1A", "SMARCA4", "NOTCH3", "CIC", "INSR", "GNA11",
              "FBN3", "ZNF536", "CCNE1", "FCGBP", "PEG3", "TSHZ3", "WDR87", "ZNF208"),
    "chr20": ("PTPRT", "ASXL1", "GNAS"),
    "chr21": ("DSCAM", "RUNX1", "TPTE"),
    "chr22": ("EP300", "NF2", "SMARCB1", "CHEK2", "ZNRF3", "MYO18B"),
    "chrX": ("DMD", "HUWE1", "USP9X", "STAG2", "BCOR", "KDM6A", "KDM5C", "DDX3X", "RPS6KA3",
             "MXRA5", "PCDH11X", "TENM1"),
})  # fmt: skip


@dataclass(frozen=True)
class CommonSnp:
    """A common germline coding polymorphism (population allele frequency >= 1%)."""

    gene: str
    change: str  # short HGVS without "p."; "L769=" for a synonymous change
    rsid: str
    gnomad_af: float  # approximate global allele frequency of the alternate allele

    @property
    def residue(self) -> int:
        return int(re.search(r"\d+", self.change).group())


# Common, benign coding SNPs of the driver genes (dbSNP; frequencies rounded from gnomAD).
COMMON_SNPS: tuple[CommonSnp, ...] = (
    CommonSnp("TP53", "P72R", "rs1042522", 0.64),
    CommonSnp("EGFR", "R521K", "rs2227983", 0.25),
    CommonSnp("EGFR", "Q787=", "rs1050171", 0.50),
    CommonSnp("ERBB2", "I655V", "rs1136201", 0.17),
    CommonSnp("BRCA1", "P871L", "rs799917", 0.45),
    CommonSnp("BRCA1", "K1183R", "rs16942", 0.36),
    CommonSnp("BRCA1", "S1613G", "rs1799966", 0.36),
    CommonSnp("BRCA2", "N372H", "rs144848", 0.27),
    CommonSnp("ATM", "D1853N", "rs1801516", 0.11),
    CommonSnp("PIK3CA", "I391M", "rs2230461", 0.07),
    CommonSnp("KIT", "M541L", "rs3822214", 0.08),
    CommonSnp("APC", "V1822D", "rs459552", 0.20),
    CommonSnp("MLH1", "I219V", "rs1799977", 0.20),
    CommonSnp("RET", "G691S", "rs1799939", 0.18),
    CommonSnp("RET", "L769=", "rs1800861", 0.25),
    CommonSnp("MET", "N375S", "rs33917957", 0.02),
    CommonSnp("CDKN2A", "A148T", "rs3731249", 0.02),
)

# Real codons of famous hotspot residues, so e.g. KRAS G12D is GGT>GAT as in patients.
_REAL_CODONS: Mapping[tuple[str, int], str] = MappingProxyType({
    ("BRAF", 600): "GTG", ("KRAS", 12): "GGT", ("KRAS", 13): "GGC", ("KRAS", 61): "CAA",
    ("NRAS", 61): "CAA", ("EGFR", 858): "CTG", ("EGFR", 790): "ACG", ("PIK3CA", 1047): "CAT",
    ("PIK3CA", 545): "GAG", ("PIK3CA", 542): "GAA", ("IDH1", 132): "CGT",
    ("TP53", 72): "CCC", ("TP53", 175): "CGC", ("TP53", 248): "CGG", ("TP53", 273): "CGT",
})  # fmt: skip

# TERT promoter hotspots named by their hg19 coordinate (chr5:1,295,228 / 1,295,250) lie
# 124 and 146 bp before the ATG (c.-124C>T, c.-146C>T).
_PROMOTER_SITES: Mapping[str, int] = MappingProxyType({"C228T": 124, "C250T": 146})

# Gene layout (bp).
_UPSTREAM = 300  # promoter flank before the ATG
_DOWNSTREAM = 120  # 3' flank after the stop codon
_SPACER = 200  # intergenic sequence, also at both contig ends
_EXON_LEN = (150, 451)  # coding exon length range [lo, hi)
_INTRON_LEN = (80, 241)
_PASSENGER_AA = (150, 900)  # random protein length of passenger genes
_FASTA_WIDTH = 60

_BASES = "ACGT"
_BASE_BYTES = bytes.maketrans(bytes(range(4)), _BASES.encode())
_CODE = dict(
    zip(
        (a + b + c for a in "TCAG" for b in "TCAG" for c in "TCAG"),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        strict=True,
    )
)
_SENSE = tuple(sorted(c for c, aa in _CODE.items() if aa != "*"))
_STOPS = tuple(sorted(c for c, aa in _CODE.items() if aa == "*"))
_CODONS_OF: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {aa: tuple(sorted(c for c, a in _CODE.items() if a == aa)) for aa in set(_CODE.values())}
)

IMPACT: Mapping[str, str] = MappingProxyType({
    "missense_variant": "MODERATE", "synonymous_variant": "LOW", "stop_gained": "HIGH",
    "frameshift_variant": "HIGH", "inframe_deletion": "MODERATE",
    "splice_donor_variant": "HIGH", "upstream_gene_variant": "MODIFIER",
    "intron_variant": "MODIFIER", "transcript_amplification": "HIGH",
    "transcript_ablation": "HIGH", "gene_fusion": "HIGH",
})  # fmt: skip


def translate(codon: str) -> str:
    """Amino acid (one letter, "*" for stop) of a DNA codon."""
    return _CODE[codon]


def _hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def _nearest_codon(codon: str, target: str) -> str:
    """The codon of amino acid `target` ("=" same amino acid, other codon) closest to `codon`."""
    aa = _CODE[codon]
    options = [c for c in _CODONS_OF[aa] if c != codon] if target == "=" else _CODONS_OF[target]
    if not options:
        raise ConfigError(f"no codon for {target!r} next to {codon} ({aa})")
    return min(options, key=lambda c: (_hamming(codon, c), c))


# ------------------------------------------------------------------------------ pins


@dataclass
class _Pins:
    """What the tables require of one gene's synthetic sequence (build-time scratch)."""

    residues: dict[int, tuple[str, set[str]]] = field(default_factory=dict)  # ref aa, alts
    occupied: set[int] = field(default_factory=set)  # residues passengers must not hit
    cuts: set[int] = field(default_factory=set)  # forced exon ends (CDS offset, exclusive)
    upstream: dict[int, str] = field(default_factory=dict)  # bp before ATG -> base

    def pin(self, gene: str, residue: int, ref_aa: str, alt: str = "") -> None:
        known = self.residues.setdefault(residue, (ref_aa, set()))
        if known[0] != ref_aa:
            raise ConfigError(f"{gene} residue {residue} is both {known[0]} and {ref_aa}")
        if alt:
            known[1].add(alt)
        self.occupied.add(residue)


def _table_pins() -> dict[str, _Pins]:
    """Pins from every driver event of the oncology tables and every common SNP."""
    pins: dict[str, _Pins] = {}
    for ev in all_driver_events():
        p = pins.setdefault(ev.gene, _Pins())
        change = ev.protein_change
        match ev.kind:
            case "MISSENSE":
                p.pin(ev.gene, ev.residue, change[0], change[-1])
            case "NONSENSE":
                p.pin(ev.gene, ev.residue, change[0], "*")
            case "FRAMESHIFT":
                p.pin(ev.gene, ev.residue, change[0])
            case "INFRAME_DELETION":
                first, last = (int(x) for x in re.findall(r"\d+", change))
                p.pin(ev.gene, first, change[0])
                p.pin(ev.gene, last, change.split("_")[1][0])
                p.occupied.update(range(first, last + 1))
            case "SPLICE":
                p.cuts.add(3 * (ev.residue - 1) + 1)
                p.occupied.add(ev.residue)
            case "PROMOTER":
                p.upstream[_PROMOTER_SITES[change]] = change[0]
    for snp in COMMON_SNPS:
        pins.setdefault(snp.gene, _Pins()).pin(snp.gene, snp.residue, snp.change[0], snp.change[-1])
    return pins


def _pinned_codon(gene: str, residue: int, ref_aa: str, alts: set[str]) -> str:
    real = _REAL_CODONS.get((gene, residue))
    if real is not None:
        if _CODE[real] != ref_aa:
            raise ConfigError(f"real codon {real} of {gene} {residue} does not encode {ref_aa}")
        return real

    def cost(codon: str) -> int:
        return sum(_hamming(codon, _nearest_codon(codon, alt)) for alt in alts)

    return min(_CODONS_OF[ref_aa], key=lambda c: (cost(c), c))


# ----------------------------------------------------------------------- the reference


@dataclass(frozen=True)
class GeneLocus:
    """Where a gene lies on the synthetic reference (1-based inclusive coordinates)."""

    gene: str
    chrom: str
    start: int  # first base of the promoter flank
    end: int  # last base of the 3' flank
    exons: tuple[tuple[int, int], ...]  # coding exons, ATG to stop codon
    role: str  # "driver", "partner" or "passenger"

    @cached_property
    def _offsets(self) -> tuple[int, ...]:
        acc, out = 0, []
        for s, e in self.exons:
            out.append(acc)
            acc += e - s + 1
        return tuple(out)

    @property
    def cds_start(self) -> int:
        return self.exons[0][0]

    @property
    def cds_length(self) -> int:
        return sum(e - s + 1 for s, e in self.exons)

    @property
    def protein_length(self) -> int:
        return self.cds_length // 3 - 1

    @property
    def introns(self) -> tuple[tuple[int, int], ...]:
        return tuple((a[1] + 1, b[0] - 1) for a, b in pairwise(self.exons))

    def cds_position(self, offset: int) -> int:
        """Genomic position of 0-based CDS offset `offset` (residue p starts at 3*(p-1))."""
        i = bisect.bisect_right(self._offsets, offset) - 1
        return self.exons[i][0] + offset - self._offsets[i]


@dataclass(frozen=True, eq=False)
class Reference:
    """The synthetic reference: FASTA path, contigs, gene loci and the sequences in memory."""

    fasta: Path
    contigs: tuple[tuple[str, int], ...]  # (name, length) in file order
    genes: Mapping[str, GeneLocus]
    sequences: Mapping[str, str] = field(repr=False)

    def fetch(self, chrom: str, start: int, end: int) -> str:
        """Bases `start`..`end` (1-based, inclusive) of a contig."""
        return self.sequences[chrom][start - 1 : end]

    def codon(self, gene: str, residue: int) -> str:
        """The three reference bases of a protein residue."""
        locus = self.genes[gene]
        seq = self.sequences[locus.chrom]
        return "".join(seq[locus.cds_position(3 * (residue - 1) + i) - 1] for i in range(3))

    @cached_property
    def contig_index(self) -> Mapping[str, int]:
        return MappingProxyType({name: i for i, (name, _) in enumerate(self.contigs)})

    @cached_property
    def occupied(self) -> Mapping[str, frozenset[int]]:
        """Residues per gene that the tables use; passengers stay off them."""
        return MappingProxyType({g: frozenset(p.occupied) for g, p in _table_pins().items()})

    @cached_property
    def _passenger_pool(self) -> tuple[tuple[GeneLocus, ...], np.ndarray]:
        # Mutations land in proportion to coding length; driver genes get a quarter weight
        # so most passengers fall outside them.
        loci = tuple(self.genes[g] for g in sorted(self.genes))
        weights = np.array([lc.cds_length * (0.25 if lc.role == "driver" else 1.0) for lc in loci])
        return loci, np.cumsum(weights) / weights.sum()

    def sort_key(self, v: Variant) -> tuple[int, int, str]:
        return self.contig_index[v.chrom], v.pos, v.alt

    @classmethod
    def load(cls, directory: Path) -> Reference:
        """The reference `build_reference` wrote into `directory`."""
        directory = Path(directory)
        try:
            meta = json.loads((directory / META_NAME).read_text(encoding="utf-8"))
            fasta = directory / meta["fasta"]
            with pysam.FastaFile(str(fasta)) as fa:
                sequences = {name: fa.fetch(name) for name, _ in meta["contigs"]}
        except (OSError, ValueError, KeyError) as exc:
            raise CohortError(f"{directory}: no readable synthetic reference ({exc})") from exc
        genes = {g["gene"]: GeneLocus(**g | {"exons": tuple(map(tuple, g["exons"]))})
                 for g in meta["genes"]}  # fmt: skip
        return cls(
            fasta=fasta,
            contigs=tuple((n, int(length)) for n, length in meta["contigs"]),
            genes=MappingProxyType(genes),
            sequences=MappingProxyType(sequences),
        )


def _random_bases(rng: np.random.Generator, n: int) -> str:
    return rng.integers(0, 4, n, dtype=np.uint8).tobytes().translate(_BASE_BYTES).decode()


def _exon_cuts(n: int, pins: _Pins, rng: np.random.Generator) -> list[int]:
    """CDS offsets where exons end: random, off pinned codons, plus the forced ones."""
    forbidden = {c for r in pins.occupied for c in range(3 * (r - 2), 3 * (r + 1) + 4)}
    cuts, pos = [], 0
    while True:
        pos += int(rng.integers(*_EXON_LEN))
        while pos in forbidden:
            pos += 1
        if pos >= n - 30:
            break
        if all(abs(pos - f) >= 30 for f in pins.cuts):
            cuts.append(pos)
    if not cuts and not pins.cuts:  # every gene gets an intron, for intronic passengers
        cuts.append(next(c for c in range(n // 2, n) if c not in forbidden))
    return sorted({*cuts, *pins.cuts})


def _build_gene(
    gene: str, chrom: str, role: str, n_aa: int, start: int, pins: _Pins, rng: np.random.Generator
) -> tuple[GeneLocus, str]:
    """One gene's locus and sequence, placed at 1-based contig position `start`."""
    codons = [_SENSE[i] for i in rng.integers(0, len(_SENSE), n_aa)]
    codons[0] = "ATG"
    for residue, (ref_aa, alts) in pins.residues.items():
        if residue > n_aa:
            raise ConfigError(f"{gene} has {n_aa} residues; the tables use residue {residue}")
        codons[residue - 1] = _pinned_codon(gene, residue, ref_aa, alts)
    cds = "".join(codons) + _STOPS[int(rng.integers(0, len(_STOPS)))]

    upstream = list(_random_bases(rng, _UPSTREAM))
    for distance, base in pins.upstream.items():
        upstream[_UPSTREAM - distance] = base
    parts, exons = ["".join(upstream)], []
    pos = start + _UPSTREAM
    bounds = [0, *_exon_cuts(len(cds), pins, rng), len(cds)]
    for i, (a, b) in enumerate(pairwise(bounds)):
        exons.append((pos, pos + b - a - 1))
        parts.append(cds[a:b])
        pos += b - a
        if i < len(bounds) - 2:
            n = int(rng.integers(*_INTRON_LEN))
            parts.append("GT" + _random_bases(rng, n - 4) + "AG")
            pos += n
    parts.append(_random_bases(rng, _DOWNSTREAM))
    seq = "".join(parts)
    return GeneLocus(gene, chrom, start, start + len(seq) - 1, tuple(exons), role), seq


def _gene_plan(rng: np.random.Generator) -> dict[str, list[tuple[str, str, int]]]:
    """Per contig: (gene, role, protein length), genes sorted by name."""
    plan: dict[str, list[tuple[str, str, int]]] = {c: [] for c in CONTIG_ORDER}
    for gene in DRIVER_GENES:
        chrom, n_aa = _DRIVER_LOCI[gene]
        plan[chrom].append((gene, "driver", n_aa))
    for gene, (chrom, n_aa) in _PARTNER_LOCI.items():
        plan[chrom].append((gene, "partner", n_aa))
    for chrom in CONTIG_ORDER:
        for gene in _PASSENGERS.get(chrom, ()):
            plan[chrom].append((gene, "passenger", int(rng.integers(*_PASSENGER_AA))))
    return {c: sorted(genes) for c, genes in plan.items() if genes}


def build_reference(out_dir: Path, seed: int = 0) -> Reference:
    """Write reference.fa (+ .fai) and reference.json into `out_dir`; same seed, same bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pins = _table_pins()
    contigs, genes, sequences = [], {}, {}
    for chrom, plan in _gene_plan(rng).items():
        parts = [_random_bases(rng, _SPACER)]
        pos = 1 + _SPACER
        for gene, role, n_aa in plan:
            locus, seq = _build_gene(gene, chrom, role, n_aa, pos, pins.get(gene, _Pins()), rng)
            genes[gene] = locus
            parts += [seq, _random_bases(rng, _SPACER)]
            pos += len(seq) + _SPACER
        sequences[chrom] = "".join(parts)
        contigs.append((chrom, len(sequences[chrom])))

    fasta = out_dir / FASTA_NAME
    lines = []
    for chrom, seq in sequences.items():
        lines.append(f">{chrom}")
        lines += [seq[i : i + _FASTA_WIDTH] for i in range(0, len(seq), _FASTA_WIDTH)]
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{FASTA_NAME}.")
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
        pysam.faidx(tmp)
        os.replace(tmp, fasta)
        os.replace(f"{tmp}.fai", f"{fasta}.fai")
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(f"{tmp}.fai").unlink(missing_ok=True)

    meta = {
        "format": 1,
        "seed": seed,
        "fasta": FASTA_NAME,
        "contigs": contigs,
        "genes": [
            {"gene": lc.gene, "chrom": lc.chrom, "start": lc.start, "end": lc.end,
             "exons": lc.exons, "role": lc.role}
            for lc in genes.values()
        ],
    }  # fmt: skip
    write_atomic(out_dir / META_NAME, (json.dumps(meta, indent=1) + "\n").encode("ascii"))
    return Reference(
        fasta=fasta,
        contigs=tuple(contigs),
        genes=MappingProxyType(genes),
        sequences=MappingProxyType(sequences),
    )


# ---------------------------------------------------------------------------- variants

# Mean passenger count per case at low / high TMB: a scaled-down copy of the per-type
# mutation burden of Lawrence et al., Nature 2013, so a default cohort stays fast.
PASSENGER_MEAN: Mapping[str, tuple[int, int]] = MappingProxyType({
    "BRCA": (5, 25), "LUAD": (10, 38), "LUSC": (12, 40), "COAD": (8, 40), "PAAD": (4, 20),
    "SKCM": (12, 40), "GBM": (5, 25), "PRAD": (3, 15), "THCA": (2, 12), "KIRC": (5, 20),
    "OV": (6, 20), "CESC": (8, 30), "HNSC": (8, 30), "LIHC": (6, 20), "SARC": (4, 20),
})  # fmt: skip
_PASSENGER_RANGE = (2, 40)  # clip of the Poisson draw, keeping totals around 5-60
_INTRONIC_SHARE = 0.12  # share of passengers placed in introns
_PURITY = (0.45, 0.95)  # tumour purity range; a clonal heterozygous VAF is purity / 2
_MEAN_DEPTH = (80, 400)  # per-case mean depth; each variant varies around it
_DEPTH_RANGE = (30, 500)
_CN_RANGE = (6, 21)  # copy number of an amplification [lo, hi)
_BND_ALT = re.compile(r"[\[\]]([^:\[\]]+):(\d+)[\[\]]")


@dataclass(frozen=True)
class _Sample:
    """Per-case sequencing context."""

    purity: float
    mean_depth: float

    def depth(self, rng: np.random.Generator) -> int:
        lo, hi = _DEPTH_RANGE
        return int(min(hi, max(lo, round(self.mean_depth * rng.uniform(0.6, 1.4)))))


def _variant(
    rng: np.random.Generator,
    sample: _Sample,
    true_vaf: float,
    chrom: str,
    pos: int,
    ref: str,
    alt: str,
    gene: str,
    consequence: str,
    hgvsp: str,
    role: str,
) -> Variant:
    """A variant whose VAF is a binomial read count at a drawn depth (at least 2 alt reads)."""
    depth = sample.depth(rng)
    alt_reads = min(depth, max(2, int(rng.binomial(depth, min(true_vaf, 1.0)))))
    return Variant(
        chrom, pos, ref, alt, gene, consequence, hgvsp, role, round(alt_reads / depth, 4), depth
    )


def _codon_change(
    reference: Reference, gene: str, residue: int, target: str
) -> tuple[int, str, str]:
    """(pos, ref, alt) turning a residue's codon into `target` with the fewest base changes."""
    locus = reference.genes[gene]
    codon = reference.codon(gene, residue)
    new = _nearest_codon(codon, target)
    diff = [i for i in range(3) if codon[i] != new[i]]
    pos = locus.cds_position(3 * (residue - 1) + diff[0])
    return pos, codon[diff[0] : diff[-1] + 1], new[diff[0] : diff[-1] + 1]


def _intron_point(locus: GeneLocus, rng: np.random.Generator, index: int | None = None) -> int:
    """A position inside an intron, away from its splice sites."""
    introns = locus.introns
    start, end = introns[int(rng.integers(len(introns))) if index is None else index]
    return int(rng.integers(start + 5, end - 4))


def _driver_variants(
    ev: DriverEvent, reference: Reference, rng: np.random.Generator, sample: _Sample
) -> list[Variant]:
    locus = reference.genes[ev.gene]
    chrom, change = locus.chrom, ev.protein_change
    clonal = sample.purity / 2 * rng.uniform(0.85, 1.15)

    def make(pos: int, ref: str, alt: str, consequence: str, hgvsp: str = "") -> Variant:
        return _variant(rng, sample, clonal, chrom, pos, ref, alt, ev.gene, consequence, hgvsp,
                        "driver")  # fmt: skip

    match ev.kind:
        case "MISSENSE" | "NONSENSE":
            target = "*" if ev.kind == "NONSENSE" else change[-1]
            pos, ref, alt = _codon_change(reference, ev.gene, ev.residue, target)
            consequence = "stop_gained" if ev.kind == "NONSENSE" else "missense_variant"
            return [make(pos, ref, alt, consequence, f"p.{change}")]
        case "FRAMESHIFT" | "INFRAME_DELETION":
            # Delete from the residue's first base; the anchor is the previous codon's last.
            first, last = ev.residue, int(re.findall(r"\d+", change)[-1])
            n = 1 if ev.kind == "FRAMESHIFT" else 3 * (last - first + 1)
            anchor = locus.cds_position(3 * (first - 1) - 1)
            ref = reference.fetch(chrom, anchor, anchor + n)
            consequence = "frameshift_variant" if n == 1 else "inframe_deletion"
            return [make(anchor, ref, ref[0], consequence, f"p.{change}")]
        case "SPLICE":
            donor = locus.cds_position(3 * (ev.residue - 1)) + 1  # intron +1 G of GT
            return [make(donor, reference.fetch(chrom, donor, donor), "T", "splice_donor_variant")]
        case "PROMOTER":
            pos = locus.cds_start - _PROMOTER_SITES[change]
            return [make(pos, change[0], change[-1], "upstream_gene_variant")]
        case "AMPLIFICATION" | "DELETION":
            # AF of a copy-number record is the share of copies in the altered state:
            # (CN - 2) / CN for a gain, 1 for a homozygous loss; write_vcf derives CN from it.
            amp = ev.kind == "AMPLIFICATION"
            cn = int(rng.integers(*_CN_RANGE)) if amp else 0
            ref = reference.fetch(chrom, locus.start, locus.start)
            consequence = "transcript_amplification" if amp else "transcript_ablation"
            vaf = round((cn - 2) / cn, 4) if amp else 1.0
            return [Variant(chrom, locus.start, ref, "<DUP>" if amp else "<DEL>", ev.gene,
                            consequence, "", "driver", vaf, sample.depth(rng))]  # fmt: skip
        case "FUSION":
            # Breakends in a middle intron: 5' partner up to `a`, joined to the gene from `b`.
            five = reference.genes[ev.partner]
            a = _intron_point(five, rng, len(five.introns) // 2)
            b = _intron_point(locus, rng, len(locus.introns) // 2)
            ra, rb = reference.fetch(five.chrom, a, a), reference.fetch(chrom, b, b)
            return [
                _variant(rng, sample, clonal, five.chrom, a, ra, f"{ra}[{chrom}:{b}[",
                         ev.partner, "gene_fusion", "", "driver"),
                make(b, rb, f"]{five.chrom}:{a}]{rb}", "gene_fusion"),
            ]  # fmt: skip
    raise ConfigError(f"no variant model for driver kind {ev.kind}")


def _passenger(
    locus: GeneLocus, reference: Reference, rng: np.random.Generator, sample: _Sample
) -> Variant | None:
    """A missense, synonymous or intronic SNV off the table residues; None to redraw."""
    subclonal = sample.purity / 2 * rng.uniform(0.15, 1.0)
    seq = reference.sequences[locus.chrom]
    if rng.random() < _INTRONIC_SHARE:
        pos = _intron_point(locus, rng)
        ref = seq[pos - 1]
        alt = _BASES.replace(ref, "")[int(rng.integers(3))]
        return _variant(rng, sample, subclonal, locus.chrom, pos, ref, alt, locus.gene,
                        "intron_variant", "", "passenger")  # fmt: skip
    residue = int(rng.integers(2, locus.protein_length + 1))  # never the start codon
    if residue in reference.occupied.get(locus.gene, ()):
        return None
    codon = reference.codon(locus.gene, residue)
    i = int(rng.integers(3))
    shift = int(rng.integers(3))
    for alt in (_BASES.replace(codon[i], "") * 2)[shift : shift + 3]:
        new = codon[:i] + alt + codon[i + 1 :]
        aa, new_aa = _CODE[codon], _CODE[new]
        if new_aa != "*":
            synonymous = aa == new_aa
            return _variant(
                rng, sample, subclonal, locus.chrom, locus.cds_position(3 * (residue - 1) + i),
                codon[i], alt, locus.gene,
                "synonymous_variant" if synonymous else "missense_variant",
                f"p.{aa}{residue}{'=' if synonymous else new_aa}", "passenger",
            )  # fmt: skip
    return None


def draw_variants(
    profile: ClinicalProfile, reference: Reference, rng: np.random.Generator
) -> tuple[Variant, ...]:
    """Driver, passenger and benign germline variants of a case, sorted by position."""
    sample = _Sample(float(rng.uniform(*_PURITY)), float(rng.uniform(*_MEAN_DEPTH)))
    out = [v for ev in profile.drivers for v in _driver_variants(ev, reference, rng, sample)]

    for snp, (u_carrier, u_hom) in zip(COMMON_SNPS, rng.random((len(COMMON_SNPS), 2)), strict=True):
        carrier = 1 - (1 - snp.gnomad_af) ** 2  # Hardy-Weinberg
        if u_carrier < carrier:
            hom = u_hom < snp.gnomad_af**2 / carrier
            pos, ref, alt = _codon_change(reference, snp.gene, snp.residue, snp.change[-1])
            consequence = "synonymous_variant" if snp.change[-1] == "=" else "missense_variant"
            chrom = reference.genes[snp.gene].chrom
            out.append(_variant(rng, sample, 0.995 if hom else 0.5, chrom, pos, ref, alt,
                                snp.gene, consequence, f"p.{snp.change}", "benign"))  # fmt: skip

    low, high = PASSENGER_MEAN[profile.cancer_type]
    n = int(np.clip(rng.poisson(high if profile.tmb_class == "high" else low), *_PASSENGER_RANGE))
    used = {(v.chrom, v.pos) for v in out}
    loci, cum = reference._passenger_pool
    while n:
        locus = loci[min(int(np.searchsorted(cum, rng.random(), side="right")), len(loci) - 1)]
        v = _passenger(locus, reference, rng, sample)
        if v is not None and (v.chrom, v.pos) not in used:
            used.add((v.chrom, v.pos))
            out.append(v)
            n -= 1
    return tuple(sorted(out, key=reference.sort_key))


# -------------------------------------------------------------------------- annotations

ANNOTATION_LANGS: tuple[str, ...] = ("de", "zh")

# Free-text driver annotations as a German or Chinese lab would write them; {gene} is the
# altered gene, {partner} the 5' partner of a fusion.
_ANNOTATIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    "de": MappingProxyType({
        "activating": (
            "Aktivierende Hotspot-Mutation in {gene}; onkogener Treiber.",
            "Bekannte onkogene {gene}-Variante, mehrfach als Treiber beschrieben.",
            "Aktivierende {gene}-Mutation; Therapierelevanz im molekularen Tumorboard prüfen.",
        ),
        "loss": (
            "Hotspot-Missense-Mutation in {gene}; Funktionsverlust wahrscheinlich.",
            "{gene}-Missense-Variante in funktionell wichtiger Domäne; als pathogen eingestuft.",
            "Rekurrente {gene}-Mutation mit vermutlichem Funktionsverlust.",
        ),
        "truncating": (
            "Trunkierende {gene}-Variante; Funktionsverlust des Genprodukts zu erwarten.",
            "Vorzeitiger Stopp bzw. Leserasterverschiebung in {gene}; wahrscheinlich pathogen.",
            "Inaktivierende {gene}-Variante; Keimbahntestung erwägen, falls klinisch indiziert.",
        ),
        "inframe": (
            "In-frame-Deletion in {gene}; aktivierende Veränderung.",
            "Aktivierende In-frame-Deletion in {gene}, als Treiber beschrieben.",
            "{gene}-In-frame-Deletion; therapeutische Relevanz im molekularen Tumorboard prüfen.",
        ),
        "splice": (
            "Spleißstellen-Variante in {gene}; Exon-Skipping zu erwarten.",
            "Variante an der Spleiß-Donorstelle von {gene}; vermutlich Exon-Skipping.",
            "Spleißvariante in {gene} mit wahrscheinlich aberrantem Transkript.",
        ),
        "amplification": (
            "{gene}-Amplifikation mit deutlich erhöhter Kopienzahl.",
            "Hochgradige Amplifikation von {gene}; Bestätigung mittels ISH empfohlen.",
            "Kopienzahlgewinn von {gene}, vereinbar mit onkogener Aktivierung.",
        ),
        "deletion": (
            "Homozygote Deletion von {gene}; vollständiger Funktionsverlust.",
            "Biallelischer Verlust von {gene} (homozygote Deletion).",
            "Keine Kopie von {gene} nachweisbar; vereinbar mit homozygoter Deletion.",
        ),
        "fusion": (
            "{partner}-{gene}-Fusion nachgewiesen; onkogener Treiber.",
            "Fusion von {partner} und {gene}; Bestätigung mittels RNA-Analyse empfohlen.",
            "Genfusion {partner}::{gene}; therapeutische Relevanz prüfen.",
        ),
        "promoter": (
            "{gene}-Promotormutation; erhöhte Telomerase-Expression zu erwarten.",
            "Nicht-kodierende Hotspot-Mutation im {gene}-Promotor.",
            "Rekurrente {gene}-Promotorvariante, häufig in Gliomen und Melanomen.",
        ),
    }),
    "zh": MappingProxyType({
        "activating": (
            "{gene}基因激活性热点突变，为致癌驱动突变。",
            "已知的{gene}致癌变异，文献中多次报道为驱动突变。",
            "{gene}激活突变；建议在分子肿瘤委员会讨论其治疗意义。",
        ),
        "loss": (
            "{gene}热点错义突变，可能导致抑癌功能丧失。",
            "{gene}功能域内的错义变异，判定为致病性。",
            "复发性{gene}突变，推测为功能丧失。",
        ),
        "truncating": (
            "{gene}截短变异，预计导致基因产物功能丧失。",
            "{gene}提前终止密码子或移码变异，可能致病。",
            "{gene}失活变异；如临床需要，建议进行胚系检测。",
        ),
        "inframe": (
            "{gene}框内缺失，为激活性改变。",
            "{gene}激活性框内缺失，已报道为驱动突变。",
            "{gene}框内缺失；建议在分子肿瘤委员会讨论其治疗意义。",
        ),
        "splice": (
            "{gene}剪接位点变异，预计导致外显子跳跃。",
            "{gene}剪接供体位点变异，推测引起外显子跳跃。",
            "{gene}剪接变异，可能产生异常转录本。",
        ),
        "amplification": (
            "{gene}扩增，拷贝数明显升高。",
            "{gene}高水平扩增；建议行原位杂交（ISH）确认。",
            "{gene}拷贝数增加，符合致癌激活。",
        ),
        "deletion": (
            "{gene}纯合缺失，功能完全丧失。",
            "{gene}双等位基因缺失（纯合缺失）。",
            "未检测到{gene}拷贝，符合纯合缺失。",
        ),
        "fusion": (
            "检测到{partner}-{gene}融合，为致癌驱动事件。",
            "结构变异导致{partner}与{gene}融合；建议RNA检测确认。",
            "基因融合{partner}::{gene}；请评估其治疗意义。",
        ),
        "promoter": (
            "{gene}启动子突变，预计端粒酶表达升高。",
            "{gene}启动子非编码区热点突变。",
            "复发性{gene}启动子变异，常见于胶质瘤和黑色素瘤。",
        ),
    }),
})  # fmt: skip
_CATEGORY: Mapping[str, str] = MappingProxyType({
    "stop_gained": "truncating", "frameshift_variant": "truncating",
    "inframe_deletion": "inframe", "splice_donor_variant": "splice",
    "transcript_amplification": "amplification", "transcript_ablation": "deletion",
    "gene_fusion": "fusion", "upstream_gene_variant": "promoter",
})  # fmt: skip


def _annotation_key(v: Variant, by_locus: Mapping[tuple[str, int], Variant]) -> tuple[str, ...]:
    """(category, gene, 5' partner); both breakends of a fusion get the same key."""
    if v.consequence == "missense_variant":
        return ("activating" if v.gene in ONCOGENES else "loss", v.gene, "")
    if v.consequence not in _CATEGORY:
        raise InputError(f"no annotation for a driver with consequence {v.consequence!r}")
    if v.consequence != "gene_fusion":
        return (_CATEGORY[v.consequence], v.gene, "")
    chrom, pos = _BND_ALT.search(v.alt).groups()
    mate = by_locus.get((chrom, int(pos)))
    if mate is None:
        raise InputError(f"breakend {v.chrom}:{v.pos} has no mate among the variants")
    three_prime = v.alt.startswith("]")  # "]p]t": the mate's piece comes before this one
    return ("fusion", v.gene, mate.gene) if three_prime else ("fusion", mate.gene, v.gene)


def annotate_drivers(variants: Iterable[Variant], rng: np.random.Generator) -> tuple[Variant, ...]:
    """The variants with a German or Chinese free-text annotation on every driver record."""
    variants = tuple(variants)
    lang = ANNOTATION_LANGS[int(rng.integers(len(ANNOTATION_LANGS)))]
    by_locus = {(v.chrom, v.pos): v for v in variants}
    chosen: dict[tuple[str, ...], str] = {}
    out = []
    for v in variants:
        if v.role == "driver":
            key = _annotation_key(v, by_locus)
            if key not in chosen:
                options = _ANNOTATIONS[lang][key[0]]
                text = options[int(rng.integers(len(options)))]
                chosen[key] = text.format(gene=key[1], partner=key[2])
            v = replace(v, annotation=chosen[key], annotation_lang=lang)
        out.append(v)
    return tuple(out)


# ---------------------------------------------------------------------------- VCF files

CSQ_FIELDS: tuple[str, ...] = (
    "Allele", "Consequence", "IMPACT", "SYMBOL", "HGVSp", "gnomAD_AF", "ANNOTATION",
)  # fmt: skip
# VCF 4.3 percent-encoding of characters with a meaning in INFO (and "|" of CSQ).
_ENCODE = str.maketrans({
    "%": "%25", " ": "%20", ";": "%3B", "=": "%3D", ",": "%2C", "|": "%7C", ":": "%3A",
    "\t": "%09", "\n": "%0A", "\r": "%0D",
})  # fmt: skip
_SNP_BY_HGVSP: Mapping[tuple[str, str], CommonSnp] = MappingProxyType(
    {(s.gene, f"p.{s.change}"): s for s in COMMON_SNPS}
)
_HEADER_TAIL = (
    '##ALT=<ID=DUP,Description="Duplication (here: amplification of the whole gene)">',
    '##ALT=<ID=DEL,Description="Deletion (here: homozygous deletion of the whole gene)">',
    '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
    '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant">',
    '##INFO=<ID=CN,Number=1,Type=Integer,Description="Copy number of the segment">',
    '##INFO=<ID=MATEID,Number=.,Type=String,Description="ID of the mate breakend">',
    '##INFO=<ID=CSQ,Number=.,Type=String,Description="Consequence annotations. Format: '
    + "|".join(CSQ_FIELDS)
    + '">',
    '##INFO=<ID=ANNOTATION_LANG,Number=1,Type=String,Description="ISO 639-1 language of '
    'the free-text ANNOTATION in CSQ">',
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Read depth of each allele">',
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Allele fraction of the alternate allele">',
)


def _num(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _end(v: Variant, reference: Reference) -> int:
    """Last reference base a record covers: a copy-number record spans its whole gene."""
    return reference.genes[v.gene].end if v.alt in ("<DUP>", "<DEL>") else v.pos + len(v.ref) - 1


def _record(v: Variant, reference: Reference) -> str:
    if reference.fetch(v.chrom, v.pos, v.pos + len(v.ref) - 1) != v.ref:
        raise InputError(f"variant at {v.chrom}:{v.pos}: REF {v.ref} does not match the FASTA")
    info, vid = [], "."
    if v.alt in ("<DUP>", "<DEL>"):
        cn = round(2 / (1 - v.vaf)) if v.alt == "<DUP>" else 0
        info += [f"SVTYPE={v.alt[1:-1]}", f"END={_end(v, reference)}", f"CN={cn}"]
    elif (mate := _BND_ALT.search(v.alt)) is not None:
        vid = f"bnd_{v.chrom}_{v.pos}"
        info += ["SVTYPE=BND", f"MATEID=bnd_{mate[1]}_{mate[2]}"]
    snp = _SNP_BY_HGVSP.get((v.gene, v.hgvsp))
    if snp is not None:
        vid = snp.rsid
    csq = (v.alt, v.consequence, IMPACT[v.consequence], v.gene, v.hgvsp,
           _num(snp.gnomad_af) if snp else "", v.annotation)  # fmt: skip
    info.append("CSQ=" + "|".join(x.translate(_ENCODE) for x in csq))
    if v.annotation_lang:
        info.append(f"ANNOTATION_LANG={v.annotation_lang}")
    alt_reads = round(v.vaf * v.depth)
    gt = "1/1" if v.vaf >= 0.95 else "0/1"
    fmt = f"{gt}:{v.depth - alt_reads},{alt_reads}:{v.depth}:{_num(v.vaf)}"
    cols = (v.chrom, str(v.pos), vid, v.ref, v.alt, ".", "PASS", ";".join(info), "GT:AD:DP:AF", fmt)
    return "\t".join(cols)


# BGZF (SAMv1 spec 4.1) and tabix index (tabix spec) written directly: htslib syncs every
# file it closes to disk, which alone cost 5-7 ms per VCF here against a 5 ms budget.
_BGZF_BLOCK = 0xFF00  # uncompressed bytes per block, as htslib fills them
_BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
_TBI_META_BIN = 37450  # pseudo-bin holding a reference's offset span and record counts


def _bgzf(data: bytes) -> tuple[bytes, list[int]]:
    """BGZF-compressed `data` with the EOF block, and the compressed offset of every block."""
    blocks, starts, pos = [], [], 0
    for i in range(0, len(data), _BGZF_BLOCK):
        chunk = data[i : i + _BGZF_BLOCK]
        deflate = zlib.compressobj(6, zlib.DEFLATED, -15)
        cdata = deflate.compress(chunk) + deflate.flush()
        head = struct.pack("<4BI2BH2BHH", 31, 139, 8, 4, 0, 0, 255, 6, 66, 67, 2, len(cdata) + 25)
        blocks.append(head + cdata + struct.pack("<II", zlib.crc32(chunk), len(chunk)))
        starts.append(pos)
        pos += len(blocks[-1])
    starts.append(pos)  # an offset at the very end points at the EOF block
    return b"".join(blocks) + _BGZF_EOF, starts


def _reg2bin(beg: int, end: int) -> int:
    """UCSC/BAI bin of the 0-based half-open interval [beg, end)."""
    end -= 1
    for shift, first in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if beg >> shift == end >> shift:
            return first + (beg >> shift)
    return 0


def _compress_bins(bins: dict[int, list[list[int]]]) -> None:
    """htslib's compress_binning: fold a bin spanning under 64 KiB of compressed file into
    its parent when that exists (deepest level first), then merge chunks sharing a block."""
    for first in (4681, 585, 73, 9, 1):  # first bin of levels 5..1
        for b in [k for k in bins if k >= first]:
            chunks, parent = sorted(bins[b]), (b - 1) >> 3
            if (chunks[-1][1] >> 16) - (chunks[0][0] >> 16) < 0x10000 and parent in bins:
                bins[parent] += chunks
                del bins[b]
    for b, chunks in bins.items():
        merged = []
        for u, v in sorted(chunks):
            if merged and merged[-1][1] >> 16 >= u >> 16:
                merged[-1][1] = max(merged[-1][1], v)
            else:
                merged.append([u, v])
        bins[b] = merged


def _tabix_index(spans: list[tuple[str, int, int, int, int]]) -> bytes:
    """A .tbi for VCF records given as (chrom, beg, end, first voffset, end voffset)."""
    names = list(dict.fromkeys(s[0] for s in spans))
    packed = [b"TBI\1"]
    blob = b"".join(n.encode() + b"\0" for n in names)
    # n_ref, format VCF, sequence / begin / end columns, meta char, lines to skip, names
    packed.append(struct.pack("<8i", len(names), 2, 1, 2, 0, ord("#"), 0, len(blob)) + blob)
    for name in names:
        mine = [s for s in spans if s[0] == name]
        bins: dict[int, list[list[int]]] = {}
        linear: dict[int, int] = {}
        for _, beg, end, v0, v1 in mine:
            chunks = bins.setdefault(_reg2bin(beg, end), [])
            if chunks and chunks[-1][1] == v0:
                chunks[-1][1] = v1
            else:
                chunks.append([v0, v1])
            for window in range(beg >> 14, ((end - 1) >> 14) + 1):
                linear.setdefault(window, v0)
        _compress_bins(bins)
        packed.append(struct.pack("<i", len(bins) + 1))
        for b in sorted(bins):
            packed.append(struct.pack(f"<Ii{2 * len(bins[b])}Q", b, len(bins[b]),
                                      *(x for c in bins[b] for x in c)))  # fmt: skip
        packed.append(struct.pack("<Ii4Q", _TBI_META_BIN, 2, mine[0][3], mine[-1][4], len(mine), 0))
        ioff, nxt = [], 0  # as htslib: an empty window takes the next window's offset
        for window in range(max(linear), -1, -1):
            nxt = linear.get(window, nxt)
            ioff.append(nxt)
        packed.append(struct.pack(f"<i{len(ioff)}Q", len(ioff), *reversed(ioff)))
    packed.append(struct.pack("<Q", 0))  # records without coordinates
    return _bgzf(b"".join(packed))[0]


def write_vcf(path: Path, variants: Iterable[Variant], reference: Reference, sample: str) -> Path:
    """Write a bgzipped VCF 4.2 (`path`, ending .vcf.gz) and its tabix index (`path`.tbi).

    Both files appear atomically, the index last; the bytes depend only on the inputs.
    """
    path = Path(path)
    if not sample or any(c.isspace() for c in sample):
        raise InputError(f"VCF sample name {sample!r} must be non-empty without whitespace")
    header = "\n".join([
        "##fileformat=VCFv4.2",
        "##source=cmkd-synthetic-cohort",
        f"##reference={reference.fasta.name}",
        *(f"##contig=<ID={name},length={length}>" for name, length in reference.contigs),
        *_HEADER_TAIL,
        f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{sample}",
    ]).encode("utf-8") + b"\n"  # fmt: skip
    variants = tuple(variants)
    unknown = {v.chrom for v in variants} - set(reference.contig_index)
    if unknown:
        raise InputError(f"variants on contigs not in the reference: {sorted(unknown)}")
    ordered = sorted(variants, key=reference.sort_key)
    lines = [(_record(v, reference) + "\n").encode("utf-8") for v in ordered]
    text = header + b"".join(lines)
    data, starts = _bgzf(text)

    def voffset(u: int) -> int:  # a block's end is the next block's start, as htslib says
        return (
            starts[-1] << 16 if u == len(text) else starts[u // _BGZF_BLOCK] << 16 | u % _BGZF_BLOCK
        )

    spans, u = [], len(header)
    for v, line in zip(ordered, lines, strict=True):
        # as tabix does, a record spans REF or, when given, up to INFO/END
        spans.append((v.chrom, v.pos - 1, _end(v, reference), voffset(u), voffset(u + len(line))))
        u += len(line)
    write_atomic(path, data)
    write_atomic(Path(f"{path}.tbi"), _tabix_index(spans))
    return path


def read_variants(path: Path) -> tuple[Variant, ...]:
    """Variants of a VCF written by `write_vcf` (role is "": a VCF carries no truth label).

    A minimal reader for round trips and tests; user VCFs go through core/genomics/.
    """
    out = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("#"):
                continue
            try:
                chrom, pos, _, ref, alt, _, _, info, keys, values = line.rstrip("\n").split("\t")
                fields = dict(kv.partition("=")[::2] for kv in info.split(";"))
                csq = dict(zip(CSQ_FIELDS, map(unquote, fields["CSQ"].split("|")), strict=True))
                fmt = dict(zip(keys.split(":"), values.split(":"), strict=True))
                out.append(Variant(
                    chrom, int(pos), ref, alt, csq["SYMBOL"], csq["Consequence"], csq["HGVSp"],
                    "", float(fmt["AF"]), int(fmt["DP"]), csq["ANNOTATION"],
                    fields.get("ANNOTATION_LANG", ""),
                ))  # fmt: skip
            except (ValueError, KeyError) as exc:
                raise InputError(f"{path}:{n}: not a record write_vcf wrote ({exc})") from exc
    return tuple(out)
