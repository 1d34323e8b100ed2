"""Evaluation of the distilled students: metrics, the driver-gene probe and the report."""
