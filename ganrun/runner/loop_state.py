"""Lightning's loop progress in a checkpoint, written in one canonical form.

On a restore, Lightning infers where the run stopped from the relations between its progress
counters (ready/started/processed/completed, for epochs and batches). Those relations do not
survive every resume: after a resume on an epoch's last batch the epoch counters of the run
that follows have another shape, and a later checkpoint on an epoch's last batch is then read
as "restart this epoch", which repeats that epoch's data and shifts the epoch count. ganrun
only ever saves after a batch, at a position it knows itself (``data_position``), so every
checkpoint gets the counters of an uninterrupted run saved at the end of that batch.
"""


def canonical_loop_state(loops: dict, epoch: int, batches: int, batches_per_epoch: float) -> None:
    """Rewrites ``loops`` (a checkpoint's ``"loops"``) in place for a save after batch
    ``batches`` (1-based) of ``epoch`` (0-based)."""
    fit = loops.get("fit_loop")
    if not fit or batches < 1:
        return
    epochs = {"ready": epoch + 1, "started": epoch + 1, "processed": epoch, "completed": epoch}
    fit["epoch_progress"] = {"total": dict(epochs), "current": dict(epochs)}
    progress = fit["epoch_loop.batch_progress"]
    total = progress["total"]["processed"]
    progress["total"] = _after_batch(total)
    progress["current"] = _after_batch(batches)
    progress["is_last_batch"] = batches >= batches_per_epoch


def _after_batch(count: int) -> dict:
    # on_train_batch_end: the batch is processed, Lightning has not yet counted it completed.
    return {"ready": count, "started": count, "processed": count, "completed": count - 1}
