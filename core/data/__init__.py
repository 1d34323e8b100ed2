"""Cohort data: schema, synthetic generator, lexicon, notes, genomics, pathology, importers."""
