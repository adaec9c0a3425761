"""How many images an FID came from, and the warning for too few: FID's bias grows as the
sample shrinks (pytorch-fid advises at least 2,048 images), so an FID of 200 images is much
higher than the same generator's FID of 10,000 and comparable only at the same counts."""

MIN_FID_SAMPLES = 2000


def few_samples_warning(counts: dict) -> str | None:
    """One line for counts below ``MIN_FID_SAMPLES``, else None (a statistics file's real
    count is unknown: its side is not judged)."""
    known = [n for n in counts.values() if isinstance(n, int)]
    if not known or min(known) >= MIN_FID_SAMPLES:
        return None
    return (f"FID from {counts['num_samples']} generated and {counts['real_samples']} "
            f"real images is strongly biased at that size (below {MIN_FID_SAMPLES:,}); compare "
            "it only with FIDs of the same counts, or raise num_samples and "
            "metrics.real_samples.")


def fid_counts(metrics: dict) -> dict[str, int]:
    """``num_samples`` and ``real_samples`` of the last evaluation of the metric that scores
    FID, or {} if none does."""
    for metric in metrics.values():
        if "fid" in getattr(metric, "keys", ()) and getattr(metric, "counts", None):
            return dict(metric.counts)
    return {}
