"""Distillation losses, one per module: InfoNCE, anchor alignment, KD, CE, fidelity, combined."""
