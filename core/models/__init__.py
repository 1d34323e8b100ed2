"""Encoders: the teacher's text backbone, the multilingual student, heads and the quantum head."""
