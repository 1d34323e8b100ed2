"""VCF reading (pysam lives only in `pysam_adapter`) and somatic variant interpretation."""
