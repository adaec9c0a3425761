"""Metrics of a generator against real data (FID, KID, IS, precision/recall, mode coverage)."""
