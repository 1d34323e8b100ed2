"""Build the knowledge tables in `assets/knowledge/` from the shared reference data.

    python -m core.knowledge.build [--src DIR] [--out DIR]

`--src` defaults to `$CMKD_SHARED_DATA`, else `../shared/data` beside the repository. The
output is deterministic (sorted rows, no clock, no absolute paths), so a rebuild from the
same sources reproduces the shipped files byte for byte. See assets/knowledge/README.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.data.schema import CANCER_TYPES
from core.errors import InputError
from core.io import write_atomic
from core.knowledge.tables import (
    MANIFEST,
    PAN_CANCER_DISEASES,
    RESIDUE_RE,
    TABLES,
    Assertion,
    CivicVariant,
    Counts,
    Evidence,
    GeneRole,
    Hotspot,
    OncoTreeType,
    columns,
    default_dir,
    encode_row,
)

CIVIC_EVIDENCE = "civic_01-Aug-2024-ClinicalEvidenceSummaries.tsv"
CIVIC_VARIANTS = "civic_01-Aug-2024-VariantSummaries.tsv"
CIVIC_PROFILES = "civic_01-Aug-2024-MolecularProfileSummaries.tsv"
CIVIC_ASSERTIONS = "civic_01-Aug-2024-AssertionSummaries.tsv"
CIVIC_VCF = "civic_01-Aug-2024-civic_accepted.vcf"
ONCOTREE_RELEASE = "2025-10-03"
ONCOTREE = f"oncotree_{ONCOTREE_RELEASE.replace('-', '_')}.json"
HOTSPOT_RESIDUES = "3dhotspots_residues.tsv"
HOTSPOT_MUTATIONS = "3dhotspots_mutations.tsv"
CANCERMINE = "cancermine_collated.tsv"

CC0 = "CC0 1.0"
CC_BY = "CC BY 4.0"
ODBL = "ODbL 1.0"
LICENCES: dict[str, str] = {
    CIVIC_EVIDENCE: CC0,
    CIVIC_VARIANTS: CC0,
    CIVIC_PROFILES: CC0,
    CIVIC_ASSERTIONS: CC0,
    CIVIC_VCF: CC0,
    ONCOTREE: CC_BY,
    HOTSPOT_RESIDUES: ODBL,
    HOTSPOT_MUTATIONS: ODBL,
    CANCERMINE: CC0,
}

# CancerMine rows are text-mined; fewer citations than this are mostly extraction noise.
MIN_CITATIONS = 3
# Count lists are trimmed to the most frequent items to keep the tables small.
TOP_N = 5

# TCGA study code -> OncoTree code. GBM's own OncoTree code was revoked in favour of GB; TCGA
# THCA is papillary thyroid carcinoma; SARC (LMS, DDLPS, UPS, ...) has no single OncoTree
# node below Soft Tissue, so it maps to Sarcoma, NOS.
TCGA_TO_ONCOTREE: dict[str, str] = {
    "BRCA": "BRCA", "LUAD": "LUAD", "LUSC": "LUSC", "COAD": "COAD", "PAAD": "PAAD",
    "SKCM": "SKCM", "GBM": "GB", "PRAD": "PRAD", "THCA": "THPA", "KIRC": "CCRCC",
    "OV": "HGSOC", "CESC": "CESC", "HNSC": "HNSC", "LIHC": "HCC", "SARC": "SARCNOS",
}  # fmt: skip

# TCGA study code -> CIViC disease names (release 01-Aug-2024) that describe tumours of that
# study, most specific first (the order ranks evidence). Chosen by hand from the diseases in
# the evidence file; the build fails if a name is not there. Left out on purpose: syndromes
# (Von Hippel-Lindau Disease is germline predisposition, not ccRCC), other sites of the same
# histology (uveal/mucosal melanoma, salivary secretory carcinoma), follicular thyroid
# carcinoma (TCGA THCA holds only its papillary follicular variant) and sarcomas outside the
# TCGA SARC histologies (Ewing, rhabdomyosarcoma, GIST, ...).
TCGA_TO_CIVIC_DISEASES: dict[str, tuple[str, ...]] = {
    "BRCA": (
        "Her2-receptor Positive Breast Cancer", "Her2-receptor Negative Breast Cancer",
        "Estrogen-receptor Positive Breast Cancer", "Triple-receptor Negative Breast Cancer",
        "Inflammatory Breast Carcinoma", "Breast Tubular Carcinoma",
        "Breast Secretory Carcinoma", "Breast Carcinoma", "Breast Cancer",
    ),
    "LUAD": (
        "Lung Adenocarcinoma", "Lung Acinar Adenocarcinoma", "Bronchiolo-alveolar Adenocarcinoma",
        "Lung Non-small Cell Carcinoma", "Lung Carcinoma", "Lung Cancer",
    ),
    "LUSC": (
        "Lung Squamous Cell Carcinoma", "Lung Non-small Cell Carcinoma", "Lung Carcinoma",
        "Lung Cancer",
    ),
    "COAD": (
        "Colon Adenocarcinoma", "Colon Mucinous Adenocarcinoma", "Colon Signet Ring Adenocarcinoma",
        "Colorectal Adenocarcinoma", "Colon Carcinoma", "Colon Cancer", "Colorectal Cancer",
    ),
    "PAAD": (
        "Pancreatic Ductal Adenocarcinoma", "Pancreatic Adenocarcinoma",
        "Pancreatic Ductal Carcinoma", "Pancreatic Carcinoma",
        "Malignant Exocrine Pancreas Neoplasm", "Pancreatic Cancer",
    ),
    "SKCM": ("Skin Melanoma", "Acral Lentiginous Melanoma", "Spitzoid Melanoma", "Melanoma"),
    "GBM": (
        "Glioblastoma", "Brain Glioblastoma Multiforme", "Glioblastoma Proneural Subtype",
        "High Grade Glioma", "Malignant Astrocytoma", "Brain Glioma", "Glioma",
    ),
    "PRAD": (
        "Prostate Adenocarcinoma", "Castration-resistant Prostate Carcinoma",
        "Prostate Carcinoma", "Prostate Cancer",
    ),
    "THCA": ("Papillary Thyroid Carcinoma", "Thyroid Gland Carcinoma", "Thyroid Cancer"),
    "KIRC": ("Clear Cell Renal Cell Carcinoma", "Renal Cell Carcinoma", "Renal Carcinoma"),
    "OV": (
        "Ovarian Serous Carcinoma", "Ovary Serous Adenocarcinoma",
        "Ovarian Serous Cystadenocarcinoma", "Epithelial Ovarian Cancer",
        "Ovary Epithelial Cancer", "Ovarian Carcinoma", "Ovarian Cancer",
    ),
    "CESC": (
        "Cervical Squamous Cell Carcinoma", "Cervical Adenocarcinoma", "Cervix Carcinoma",
        "Cervical Cancer",
    ),
    "HNSC": (
        "Head And Neck Squamous Cell Carcinoma", "Oral Squamous Cell Carcinoma",
        "Laryngeal Squamous Cell Carcinoma", "Laryngeal Carcinoma", "Oropharynx Cancer",
        "Head And Neck Carcinoma", "Head And Neck Cancer",
    ),
    "LIHC": (
        "Hepatocellular Carcinoma", "Mixed Fibrolamellar Hepatocellular Carcinoma",
        "Fibrolamellar Carcinoma",
    ),
    "SARC": (
        "Liposarcoma", "Synovial Sarcoma", "Malignant Peripheral Nerve Sheath Tumor",
        "Spindle Cell Sarcoma", "Sarcoma",
    ),
}  # fmt: skip


@dataclass
class BuiltTable:
    """The rows of one output table, what it was made from and what was left out."""

    sources: tuple[str, ...]
    licence: str
    rows: list[Any] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)


# --- reading sources -------------------------------------------------------------------------


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a source TSV (header, tabs, no quoting) as dicts; InputError when malformed."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: empty file")
            rows = []
            for line, cells in enumerate(reader, start=2):
                if len(cells) != len(header):
                    raise InputError(f"{path}:{line}: {len(cells)} cells, header has {len(header)}")
                rows.append(dict(zip(header, cells, strict=True)))
    except OSError as e:
        raise InputError(f"cannot read source {path}: {e.strerror or e}") from e
    return rows


def read_vcf_alleles(path: Path) -> tuple[str, dict[int, tuple[str, int, str, str]]]:
    """(fileDate, variant id -> (chrom, pos, ref, alt)) of CIViC's GRCh37 VCF release."""
    meta: dict[str, str] = {}
    alleles: dict[int, tuple[str, int, str, str]] = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("##"):
                    key, _, value = line[2:].rstrip("\n").partition("=")
                    meta.setdefault(key, value)
                elif not line.startswith("#"):
                    chrom, pos, vid, ref, alt = line.split("\t", 5)[:5]
                    alleles[int(vid)] = (chrom, int(pos), ref, alt)
    except OSError as e:
        raise InputError(f"cannot read source {path}: {e.strerror or e}") from e
    except ValueError as e:
        raise InputError(f"{path}: bad record: {e}") from e
    if "GRCh37" not in meta.get("reference", ""):
        raise InputError(f"{path}: expected a GRCh37 reference, found {meta.get('reference')!r}")
    return meta.get("fileDate", ""), alleles


def read_oncotree(path: Path) -> dict[str, dict[str, Any]]:
    """OncoTree nodes by code, flattened from the nested JSON tree (children dropped)."""
    try:
        tree = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read source {path}: {e}") from e
    nodes: dict[str, dict[str, Any]] = {}
    stack = list(tree.values())
    while stack:
        node = stack.pop()
        stack.extend(node["children"].values())
        nodes[node["code"]] = {k: v for k, v in node.items() if k != "children"}
    return nodes


class Sources:
    """The source folder; each file is read once and its row count kept for the manifest."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InputError(f"source folder {root} does not exist")
        self.root = root
        self._rows: dict[str, Any] = {}

    def _cached(self, name: str, read: Callable[[Path], Any]) -> Any:
        if name not in self._rows:
            self._rows[name] = read(self.root / name)
        return self._rows[name]

    def tsv(self, name: str) -> list[dict[str, str]]:
        return self._cached(name, read_tsv)

    def vcf(self) -> tuple[str, dict[int, tuple[str, int, str, str]]]:
        return self._cached(CIVIC_VCF, read_vcf_alleles)

    def oncotree(self) -> dict[str, dict[str, Any]]:
        return self._cached(ONCOTREE, read_oncotree)

    def describe(self, name: str) -> dict[str, Any]:
        """md5, data rows and licence of a source that was read."""
        data = self._rows[name]
        rows = len(data[1]) if name == CIVIC_VCF else len(data)
        md5 = hashlib.md5((self.root / name).read_bytes()).hexdigest()
        return {"md5": md5, "rows": rows, "licence": LICENCES[name]}


def _split(cell: str, sep: str = ",") -> tuple[str, ...]:
    """Items of a delimited source cell, without blanks and CIViC's "N/A"."""
    return tuple(s for s in (p.strip() for p in cell.split(sep)) if s and s != "N/A")


def _int(cell: str) -> int:
    return int(cell) if cell else 0


def _doid(cell: str) -> str:
    return f"DOID:{cell}" if cell else ""


def _top(counts: Counter[str], n: int | None = None) -> Counts:
    """Most frequent first, ties by key, so that the output is deterministic."""
    return tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


# --- CIViC -----------------------------------------------------------------------------------


def _single_variants(
    profiles: list[dict[str, str]], variants: dict[str, dict[str, str]]
) -> dict[str, dict[str, str] | str]:
    """Molecular profile id -> its one variant, or the reason it is not a single variant."""
    out: dict[str, dict[str, str] | str] = {}
    for p in profiles:
        ids = _split(p["variant_ids"])
        v = variants.get(ids[0]) if len(ids) == 1 else None
        if len(ids) != 1:
            out[p["molecular_profile_id"]] = "profile of several variants"
        elif v is None:
            out[p["molecular_profile_id"]] = "variant not in VariantSummaries"
        elif v["single_variant_molecular_profile_id"] != p["molecular_profile_id"]:
            # e.g. "NOT KIT D816V": one variant, but not the profile of its presence
            out[p["molecular_profile_id"]] = "profile is not the plain variant"
        else:
            out[p["molecular_profile_id"]] = v
    return out


def _hgvs(cell: str) -> tuple[str, ...]:
    """RefSeq descriptions (Ensembl ones only when there is no RefSeq), sorted."""
    items = _split(cell)
    refseq = [h for h in items if h.startswith(("NC_", "NM_", "NP_"))]
    return tuple(sorted(set(refseq or items)))


def civic_release(src: Sources) -> str:
    """CIViC release date ("2024-08-01") from the fileDate of its VCF."""
    d = src.vcf()[0]
    return f"{d[:4]}-{d[4:6]}-{d[6:]}" if len(d) == 8 else ""


def civic_disease_doids(src: Sources) -> dict[str, str]:
    """CIViC disease name -> "DOID:..." ("" when none) over evidence and assertions."""
    rows = (*src.tsv(CIVIC_EVIDENCE), *src.tsv(CIVIC_ASSERTIONS))
    return {r["disease"]: _doid(r["doid"]) for r in rows}


def build_civic(src: Sources) -> dict[str, BuiltTable]:
    """Evidence, variants and assertions of single-variant molecular profiles."""
    raw_variants = src.tsv(CIVIC_VARIANTS)
    variants_by_id = {v["variant_id"]: v for v in raw_variants}
    profiles = src.tsv(CIVIC_PROFILES)
    single = _single_variants(profiles, variants_by_id)
    raw_evidence = src.tsv(CIVIC_EVIDENCE)
    raw_assertions = src.tsv(CIVIC_ASSERTIONS)
    vcf = src.vcf()[1]
    evidence = BuiltTable((CIVIC_EVIDENCE, CIVIC_PROFILES, CIVIC_VARIANTS), CC0)
    variants = BuiltTable((CIVIC_VARIANTS, CIVIC_VCF), CC0)
    assertions = BuiltTable((CIVIC_ASSERTIONS, CIVIC_PROFILES, CIVIC_VARIANTS), CC0)

    for e in raw_evidence:
        v = single.get(e["molecular_profile_id"], "profile not in MolecularProfileSummaries")
        if e["evidence_status"] != "accepted":
            v = "not accepted"
        if isinstance(v, str):
            evidence.dropped[v] += 1
            continue
        evidence.rows.append(
            Evidence(
                gene=v["gene"],
                variant=v["variant"],
                molecular_profile=e["molecular_profile"],
                disease=e["disease"],
                doid=_doid(e["doid"]),
                evidence_type=e["evidence_type"],
                evidence_direction=e["evidence_direction"],
                evidence_level=e["evidence_level"],
                significance=e["significance"],
                therapies=_split(e["therapies"]),
                therapy_interaction_type=e["therapy_interaction_type"],
                variant_origin=e["variant_origin"],
                evidence_id=int(e["evidence_id"]),
                citation_id=e["citation_id"],
                source_type=e["source_type"],
                rating=_int(e["rating"]),
                variant_id=int(v["variant_id"]),
            )
        )
    evidence.rows.sort(key=lambda r: (r.gene, r.variant, r.evidence_id))

    unknown_vcf_ids = set(vcf) - {int(i) for i in variants_by_id}
    if unknown_vcf_ids:
        raise InputError(f"{CIVIC_VCF}: variant ids not in {CIVIC_VARIANTS}: {unknown_vcf_ids}")
    for v in raw_variants:
        _chrom, vcf_pos, vcf_ref, vcf_alt = vcf.get(int(v["variant_id"]), ("", 0, "", ""))
        variants.rows.append(
            CivicVariant(
                gene=v["gene"],
                variant=v["variant"],
                variant_types=_split(v["variant_types"]),
                chrom=v["chromosome"],
                start=_int(v["start"]),
                stop=_int(v["stop"]),
                ref=v["reference_bases"],
                alt=v["variant_bases"],
                build=v["reference_build"],
                variant_id=int(v["variant_id"]),
                hgvs_descriptions=_hgvs(v["hgvs_descriptions"]),
                vcf_pos=vcf_pos,
                vcf_ref=vcf_ref,
                vcf_alt=vcf_alt,
            )
        )
    variants.rows.sort(key=lambda r: (r.gene, r.variant, r.variant_id))

    for a in raw_assertions:
        v = single.get(a["molecular_profile_id"], "profile not in MolecularProfileSummaries")
        if isinstance(v, str):
            assertions.dropped[v] += 1
            continue
        assertions.rows.append(
            Assertion(
                gene=v["gene"],
                variant=v["variant"],
                molecular_profile=a["molecular_profile"],
                disease=a["disease"],
                doid=_doid(a["doid"]),
                significance=a["significance"],
                amp_category=a["amp_category"],
                therapies=_split(a["therapies"]),
                assertion_type=a["assertion_type"],
                assertion_direction=a["assertion_direction"],
                regulatory_approval=a["regulatory_approval"],
                fda_companion_test=a["fda_companion_test"],
                nccn_guideline=a["nccn_guideline"],
                summary=a["assertion_summary"],
                assertion_id=int(a["assertion_id"]),
                evidence_ids=_split(a["evidence_item_ids"]),
            )
        )
    assertions.rows.sort(key=lambda r: (r.gene, r.variant, r.assertion_id))
    return {
        "civic_evidence.tsv": evidence,
        "civic_variants.tsv": variants,
        "civic_assertions.tsv": assertions,
    }


# --- 3D hotspots -----------------------------------------------------------------------------


def build_hotspots(src: Sources) -> BuiltTable:
    """One row per residue of Table S2, with the variants and tumour types of Table S5."""
    table = BuiltTable((HOTSPOT_RESIDUES, HOTSPOT_MUTATIONS), ODBL)
    mutations = src.tsv(HOTSPOT_MUTATIONS)
    # Table S5 repeats identical rows; count each (gene, position, variant) once.
    unique = {tuple(m.values()): m for m in mutations}
    table.dropped["duplicate row in Table S5"] = len(mutations) - len(unique)
    variant_aas: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    tumor_types: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for mut in unique.values():
        key = (mut["Gene"], int(mut["Amino_Acid_Position"]))
        for item in _split(mut["Tumor_Type_Composition"], "|"):
            tumor, _, n = item.rpartition(":")
            variant_aas[key][mut["Variant amino acid"]] += int(n)
            tumor_types[key][tumor] += int(n)

    for r in src.tsv(HOTSPOT_RESIDUES):
        m = RESIDUE_RE.fullmatch(r["Residue"])
        if m is None:
            raise InputError(f"{HOTSPOT_RESIDUES}: residue {r['Residue']!r} is not like 'V600'")
        key = (r["Gene"], int(m[2]))
        p = r["p-value"]
        table.rows.append(
            Hotspot(
                gene=r["Gene"],
                residue=r["Residue"],
                position=key[1],
                ref_aa=m[1],
                hotspot_class=r["Class"],
                n_mutations=int(r["#Mutations"]),
                # the XLS export carries float noise ("0.0013000000000000002")
                p_value=p if p.startswith("<") else f"{float(p):.4g}",
                variant_aas=_top(variant_aas[key]),
                tumor_types=_top(tumor_types[key], TOP_N),
                n_tumor_types=len(tumor_types[key]),
            )
        )
    table.rows.sort(key=lambda h: (h.gene, h.position))
    return table


# --- CancerMine ------------------------------------------------------------------------------

_ROLES = ("Oncogene", "Tumor_Suppressor", "Driver")


def _dominant_role(sums: Counter[str]) -> str:
    """The role with most citations. Driver loses ties to a specific role; an Oncogene vs
    Tumor_Suppressor tie leaves the direction open, which CancerMine calls Driver."""
    best = max(sums.values())
    tied = {r for r in _ROLES if sums[r] == best}
    specific = tied - {"Driver"}
    return specific.pop() if len(specific) == 1 else "Driver"


def build_gene_roles(src: Sources) -> BuiltTable:
    """CancerMine rows with at least MIN_CITATIONS citations, summed per gene."""
    table = BuiltTable((CANCERMINE,), CC0)
    role_sums: dict[str, Counter[str]] = defaultdict(Counter)
    cancers: dict[str, Counter[str]] = defaultdict(Counter)
    for r in src.tsv(CANCERMINE):
        n = int(r["citation_count"])
        if n < MIN_CITATIONS:
            table.dropped[f"citation_count < {MIN_CITATIONS}"] += 1
            continue
        if r["role"] not in _ROLES:
            raise InputError(f"{CANCERMINE}: unknown role {r['role']!r}")
        role_sums[r["gene_normalized"]][r["role"]] += n
        cancers[r["gene_normalized"]][r["cancer_normalized"]] += n
    table.rows = [
        GeneRole(
            gene=gene,
            role=_dominant_role(sums),
            n_citations=sum(sums.values()),
            oncogene_citations=sums["Oncogene"],
            tumor_suppressor_citations=sums["Tumor_Suppressor"],
            driver_citations=sums["Driver"],
            n_cancers=len(cancers[gene]),
            top_cancers=_top(cancers[gene], TOP_N),
        )
        for gene, sums in sorted(role_sums.items())
    ]
    return table


# --- OncoTree --------------------------------------------------------------------------------


def _nci_code(nodes: dict[str, dict[str, Any]], code: str) -> tuple[str, str]:
    """(NCIt code, node it came from): the node's own, else its nearest disease ancestor's.

    Level-1 nodes are tissues whose NCIt codes name anatomy, so the search stops above them.
    """
    node = nodes[code]
    while node["level"] >= 2:
        nci = node["externalReferences"].get("NCI", [])
        if nci:
            return nci[0], node["code"]
        node = nodes[node["parent"]]
    return "", ""


def build_oncotree_types(src: Sources) -> BuiltTable:
    """The cohort's TCGA codes with their OncoTree nodes and CIViC diseases."""
    table = BuiltTable((ONCOTREE, CIVIC_EVIDENCE, CIVIC_ASSERTIONS), f"{CC_BY}; {CC0}")
    civic_doids = civic_disease_doids(src)
    nodes = src.oncotree()
    unknown = [
        d
        for d in (*PAN_CANCER_DISEASES, *(d for ds in TCGA_TO_CIVIC_DISEASES.values() for d in ds))
        if d not in civic_doids
    ]
    if unknown:
        raise InputError(f"CIViC diseases of the hand map are not in the CIViC data: {unknown}")
    for tcga in sorted(CANCER_TYPES):
        code = TCGA_TO_ONCOTREE[tcga]
        if code not in nodes:
            raise InputError(f"{ONCOTREE}: no OncoTree node {code!r} for {tcga}")
        node = nodes[code]
        nci, nci_node = _nci_code(nodes, code)
        diseases = TCGA_TO_CIVIC_DISEASES[tcga]
        table.rows.append(
            OncoTreeType(
                tcga_code=tcga,
                oncotree_code=code,
                name=node["name"],
                main_type=node["mainType"] or "",
                tissue=node["tissue"] or "",
                parent=node["parent"] or "",
                level=int(node["level"]),
                nci_code=nci,
                nci_code_node=nci_node,
                umls_cui=next(iter(node["externalReferences"].get("UMLS", [])), ""),
                civic_diseases=diseases,
                civic_doids=tuple(sorted({civic_doids[d] for d in diseases} - {""})),
            )
        )
    return table


# --- writing ---------------------------------------------------------------------------------

SHIPPED_MODE = 0o644  # shipped, world-readable assets (temp files start private, 0600)


def table_text(row_type: type, rows: Iterable[Any]) -> str:
    lines = ["\t".join(columns(row_type))] + ["\t".join(encode_row(r)) for r in rows]
    return "\n".join(lines) + "\n"


def build(src: Path, out: Path) -> dict[str, Any]:
    """Build every table from `src` into `out`; returns the manifest it wrote."""
    sources = Sources(src)
    tables = {
        **build_civic(sources),
        "hotspots.tsv": build_hotspots(sources),
        "gene_roles.tsv": build_gene_roles(sources),
        "oncotree_types.tsv": build_oncotree_types(sources),
    }
    # Versions come from the data, never the clock, so that a rebuild is byte-identical.
    versions = {"CIViC": civic_release(sources), "OncoTree": ONCOTREE_RELEASE}
    manifest = {
        "build_date": max(versions.values()),
        "data_versions": versions,
        "sources": {name: sources.describe(name) for name in sorted(LICENCES)},
        "tables": {
            name: {
                "rows": len(t.rows),
                "sources": list(t.sources),
                "licence": t.licence,
                "dropped": dict(sorted(t.dropped.items())),
            }
            for name, t in sorted(tables.items())
        },
    }
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, t in tables.items():
            write_atomic(out / name, table_text(TABLES[name], t.rows).encode(), SHIPPED_MODE)
        # the manifest goes last: a folder with a current manifest has current tables
        write_atomic(
            out / MANIFEST,
            (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
            SHIPPED_MODE,
        )
    except OSError as e:
        raise InputError(f"cannot write the knowledge tables to {out}: {e}") from e
    return manifest


def default_src() -> Path:
    """`$CMKD_SHARED_DATA`, else `../shared/data` beside the repository root."""
    env = os.environ.get("CMKD_SHARED_DATA")
    repo_root = Path(__file__).resolve().parents[2]
    return Path(env) if env else repo_root.parent / "shared" / "data"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.knowledge.build", description=__doc__)
    parser.add_argument("--src", type=Path, default=None, help="shared data folder")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    args = parser.parse_args(argv)
    src, out = args.src or default_src(), args.out or default_dir()
    try:
        manifest = build(src, out)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total = sum((out / name).stat().st_size for name in (*TABLES, MANIFEST))
    for name, t in manifest["tables"].items():
        print(f"{name}: {t['rows']} rows")
    print(f"wrote {out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
