"""``ganrun report <sweep folder>``: one table (and a plot) comparing the jobs of a sweep.

Everything comes from the job folders' files: ``.hydra/overrides.yaml`` (what the job changed),
the TensorBoard events (metrics/fid, metrics/kid, losses and the last iteration) and
``status.json`` (written by ``ganrun train``: running, finished, failed or stopped).
"""

import argparse
import csv
import math
import os
import sys
from pathlib import Path

import yaml

from ganrun.runner import jobstatus
from ganrun.errors import UserError
from ganrun.progress import tracked
from ganrun.report_page import write_page

PROG = "ganrun report"
METRICS = ("fid", "kid")  # final and best (lowest) value of each, where logged
LOSSES = ("loss/g", "loss/d")  # final values in the table; curves per loss in the plot
SAME_LOSS_NOTE = ("Losses are compared only between jobs with the same loss (loss/g of bce and "
                  "of hinge are on different scales); FID compares all jobs.")


def find_jobs(folder: Path) -> list[Path]:
    """The job folders of a sweep (any sub-folder with Hydra's overrides.yaml), in job order."""
    if not folder.is_dir():
        raise UserError(f"{folder} does not exist or is not a folder. Give the folder of a "
                        "sweep (`ganrun train -m ...` prints it, e.g. outputs/multirun/<date>/<time>).")
    jobs = [p.parent.parent for p in folder.glob("*/.hydra/overrides.yaml")]
    if not jobs:
        if (folder / ".hydra").is_dir():
            raise UserError(f"{folder} is a single run, not a sweep. Give the folder of a sweep "
                            "(the parent of the numbered job folders of `ganrun train -m ...`).")
        if (folder / "multirun.yaml").is_file():
            raise UserError(f"The sweep {folder} has no job folders yet (none has a "
                            ".hydra/overrides.yaml). Wait for its first job to start, or check "
                            "that the sweep did not fail before launching jobs.")
        raise UserError(f"{folder} is not a sweep folder: it has neither multirun.yaml nor job "
                        "folders with .hydra/overrides.yaml. Give the folder that "
                        "`ganrun train -m ...` printed (e.g. outputs/multirun/<date>/<time>).")
    return sorted(jobs, key=_job_order)


def _job_order(job: Path) -> tuple:
    """Sweep jobs 0, 1, ..., 10 and study trials trial_0, ..., trial_10 in number order."""
    stem, digits = job.name.rstrip("0123456789"), job.name[len(job.name.rstrip("0123456789")):]
    return (stem, int(digits) if digits else -1, job.name)


def scalars(job: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar curve of the job's TensorBoard events: tag -> [(iteration, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(job), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def summarize(job: Path) -> dict:
    """One table row: the job's overrides, final/best metrics, iterations, wall time, status."""
    curves = scalars(job)
    status = jobstatus.read(job)
    row = {"job": job.name,
           # resume=true tells apart how a job was started, not what it trained
           "all_overrides": [o for o in yaml.safe_load(
               (job / ".hydra" / "overrides.yaml").read_text()) or [] if _key(o) != "resume"],
           "curves": curves}
    for name in METRICS:
        values = [v for _, v in curves.get(f"metrics/{name}", []) if math.isfinite(v)]
        row[f"{name}_final"] = curves[f"metrics/{name}"][-1][1] if curves.get(f"metrics/{name}") else None
        row[f"{name}_best"] = min(values) if values else None
    for tag in LOSSES:
        row[f"{tag.replace('/', '_')}_final"] = curves[tag][-1][1] if curves.get(tag) else None
    row["loss"] = loss_name(job, row["all_overrides"])
    row["iterations"] = max((c[-1][0] for c in curves.values() if c), default=0)
    row["wall_s"] = status.get("wall_s")
    row["status"] = status.get("status", "unknown")
    return row


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def loss_name(job: Path, overrides: list[str]) -> str:
    """The job's loss option (bce, hinge, ...): its override, else Hydra's recorded choice."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("loss=")]
    if given:
        return given[-1]
    hydra_file = job / ".hydra" / "hydra.yaml"
    if hydra_file.is_file():
        choices = (yaml.safe_load(hydra_file.read_text()) or {}).get("hydra", {})
        return str(choices.get("runtime", {}).get("choices", {}).get("loss", "?"))
    return "?"


def drop_shared_overrides(rows: list[dict]) -> list[str]:
    """Sets each row's ``overrides`` to what tells it apart; returns those shared by all jobs."""
    shared = [o for o in rows[0]["all_overrides"] if all(o in r["all_overrides"] for r in rows)]
    for row in rows:
        own = [o for o in row["all_overrides"] if o not in shared or len(rows) == 1]
        row["overrides"] = " ".join(own)
    return shared if len(rows) > 1 else []


def sort_rows(rows: list[dict]) -> list[dict]:
    """Lowest final FID first; jobs without a (finite) FID after them, in job order."""
    def key(row):
        fid = row["fid_final"]
        return (0, fid) if fid is not None and math.isfinite(fid) else (1, 0)
    return sorted(rows, key=key)


def columns(rows: list[dict]) -> list[str]:
    # Metric columns only where some job logged the metric: a sweep without FID stays narrow.
    metric_cols = [f"{name}_{kind}" for name in METRICS for kind in ("final", "best")
                   if any(row[f"{name}_final"] is not None for row in rows)]
    loss_cols = [f"{tag.replace('/', '_')}_final" for tag in LOSSES
                 if any(row[f"{tag.replace('/', '_')}_final"] is not None for row in rows)]
    return ["job", "overrides", *metric_cols, *loss_cols, "iterations", "wall_s", "status"]


def cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(row[c]) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict], cols: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(cols)
        writer.writerows([["" if row[c] is None else row[c] for c in cols] for row in rows])


def swept_values(rows: list[dict]) -> dict[str, list[str]]:
    """key -> each job's value, for the override keys whose value differs between jobs."""
    parsed = [dict(o.split("=", 1) for o in row["all_overrides"] if "=" in o) for row in rows]
    keys = sorted({k for p in parsed for k in p})
    return {k: [p.get(k, "-") for p in parsed] for k in keys if len({p.get(k) for p in parsed}) > 1}


def plot(path: Path, rows: list[dict]) -> list[str]:
    """Top row: FID over iterations per job, then final FID per swept value (where FID was
    logged). Bottom row: one panel per loss option with the losses of its jobs, since losses
    of different options are on different scales. Returns the panels' titles."""
    import matplotlib
    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    by_loss = {}
    for row in rows:
        by_loss.setdefault(row["loss"], []).append(row)
    swept = swept_values(rows) if any(r["fid_final"] is not None for r in rows) else {}
    top = 1 + len(swept) if any(r["fid_final"] is not None for r in rows) else 0
    ncols = max(top, len(by_loss), 1)
    nrows = 1 + (top > 0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1 + 5 * ncols, 4 * nrows + 0.5),
                             squeeze=False)
    if top:
        plot_curves(axes[0][0], rows, "metrics/fid", "metrics/fid per job")
        plot_finals(axes[0][1:top], rows, swept)
    for ax, (loss, jobs) in zip(axes[-1], by_loss.items()):
        for tag in LOSSES:
            plot_curves(ax, jobs, tag, f"losses of the loss={loss} jobs", style=_style(tag))
    titles = [ax.get_title() for ax in axes.flat if ax.get_title()]
    for ax in axes.flat:
        if not ax.get_title():
            ax.axis("off")  # a grid cell left over: rows have different panel counts
    fig.suptitle(SAME_LOSS_NOTE, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return titles


def _style(tag: str) -> str:
    return "-" if tag == "loss/g" else ":"


def plot_curves(ax, rows: list[dict], tag: str, title: str, style: str = "-") -> None:
    for row in rows:
        points = row["curves"].get(tag, [])
        if points:
            ax.plot(*zip(*points), style, marker=".", label=f"{row['job']} {tag}: {row['overrides']}")
    ax.set(xlabel="iteration", ylabel=tag if style == "-" else "loss", title=title)
    if ax.lines:
        ax.legend(fontsize="x-small")


def plot_finals(axes, rows: list[dict], swept: dict[str, list[str]]) -> None:
    finals = [r["fid_final"] if r["fid_final"] is not None else math.nan for r in rows]
    for ax, (key, values) in zip(axes, swept.items()):
        labels = sorted(set(values))
        ax.scatter([labels.index(v) for v in values], finals)
        ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize="small")
        ax.set(xlabel=key, ylabel="final metrics/fid", title=f"final FID per {key}")


def report(folder: Path) -> str:
    """Writes report.csv, report.md, report.png and report.html in the sweep folder; returns
    the table."""
    # Reading a job's TensorBoard events takes ~0.1-1 s: a large sweep shows its progress.
    rows = sort_rows([summarize(job) for job in tracked(find_jobs(folder), "Reading jobs", "job",
                                                        min_total=20)])
    shared = drop_shared_overrides(rows)
    cols = columns(rows)
    table = markdown(rows, cols)
    write_csv(folder / "report.csv", rows, cols)
    common = f"Overrides of every job: `{' '.join(shared)}`\n\n" if shared else ""
    study_lines = study_summary(folder)
    study = "".join(f"{line}\n\n" for line in study_lines)
    (folder / "report.md").write_text(f"# Sweep {folder}\n\n{common}{table}\n{study}"
                                      f"{SAME_LOSS_NOTE}\n")
    plot(folder / "report.png", rows)
    write_page(folder, rows, cols, shared, study_lines, SAME_LOSS_NOTE, cell)
    return table + ("\n" + study.rstrip() + "\n" if study else "")


def study_summary(folder: Path) -> list[str]:
    """For a `ganrun tune` study: its best trial, the pruned trials and Optuna's parameter
    importances (fANOVA), read from the study's journal file."""
    from ganrun import study as studies

    if not (folder / studies.STUDY_FILE).is_file():
        return []
    study = studies.load(folder)
    metric = study.user_attrs.get("metric", "value")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    lines = [f"Study {study.study_name}: {len(study.trials)} trials, {len(done)} finished "
             f"({metric} {study.direction.name.lower()}d)."]
    if done:
        best = study.best_trial
        params = " ".join(studies.override(k, v) for k, v in best.params.items())
        lines.append(f"Best trial: {best.number} ({metric} {best.value:.4g}): {params}")
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    if pruned:
        lines.append("Pruned trials: " + ", ".join(
            f"{t.number} (at iteration {max(t.intermediate_values, default=0)})" for t in pruned))
    lines.append(f"Parameter importances: {importances(study, done)}")
    return lines


def importances(study, done: list) -> str:
    import optuna

    if len(done) < 2:
        return f"need at least 2 finished trials (this study has {len(done)})."
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (RuntimeError, ValueError) as err:  # e.g. every finished trial has the same values
        return f"not computed ({err})."
    return ", ".join(f"{name} {value:.2f}" for name, value in found.items())


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog=PROG, description="Compare the jobs of a sweep: a table "
                                     "sorted by final FID (report.csv, report.md), report.png and report.html.")
    parser.add_argument("folder", type=Path, help="the sweep folder (outputs/multirun/<date>/<time>)")
    args = parser.parse_args(argv)
    try:
        table = report(args.folder)
    except UserError as err:
        if os.environ.get("GANRUN_DEBUG") == "1":
            raise
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(table, end="")
    print(f"Wrote report.csv, report.md, report.png and report.html (opens in a browser) in "
          f"{args.folder}", file=sys.stderr)
