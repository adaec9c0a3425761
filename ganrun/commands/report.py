"""``ganrun report <sweep folder>``: one table (and a plot) comparing the jobs of a sweep.

Everything comes from the job folders' files: ``.hydra/overrides.yaml`` (what the job changed),
the TensorBoard events (metrics/fid, metrics/kid, losses and the last iteration) and
``status.json`` (written by ``ganrun train``: running, finished, failed or stopped).
"""

import argparse
import csv
import io
import math
import os
import sys
from pathlib import Path

from ganrun.errors import UserError
from ganrun.files import write_bytes
from ganrun.markdown import escape
from ganrun.progress import tracked
from ganrun.report_page import page
from ganrun.runner import jobstatus, recorded

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
    """Every scalar curve of the job: tag -> [(iteration, value)], from its TensorBoard events,
    else from ``csv/metrics.csv`` (logger=csv, and every run logged to a remote tracker)."""
    if any(job.glob("events.out.tfevents.*")):
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(job), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: [(e.step, e.value) for e in events.Scalars(tag)]
                for tag in events.Tags()["scalars"]}
    return csv_scalars(job / "csv" / "metrics.csv")


def csv_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    """The curves of a CSV logger's file (a row per logged step, a column per tag)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file() or path.is_symlink():
        return curves
    try:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                step = _number(row.get("step"))
                if step is None:
                    continue
                for tag, value in row.items():
                    number = _number(value)
                    if tag not in ("step", "epoch") and number is not None:
                        curves.setdefault(tag, []).append((int(step), number))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path} cannot be read ({err}): it is damaged. Remove it, or the job "
                        "folder.") from None
    return curves


def _number(text) -> float | None:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def summarize(job: Path) -> dict:
    """One table row: the job's overrides, final/best metrics, iterations, wall time, status.
    The job's files are data (its folder may come from someone else): a damaged one is a
    ``UserError`` naming it."""
    curves = scalars(job)
    status = jobstatus.read(job, strict=True)
    row = {"job": job.name,
           # resume=true tells apart how a job was started, not what it trained
           "all_overrides": [o for o in recorded.read_overrides(job)
                             if _key(o) not in ALWAYS_HIDDEN],
           "curves": curves}
    for name in METRICS:
        values = [v for _, v in curves.get(f"metrics/{name}", []) if math.isfinite(v)]
        row[f"{name}_final"] = curves[f"metrics/{name}"][-1][1] if curves.get(f"metrics/{name}") else None
        row[f"{name}_best"] = min(values) if values else None
    for tag in LOSSES:
        row[f"{tag.replace('/', '_')}_final"] = curves[tag][-1][1] if curves.get(tag) else None
    row["loss"] = loss_name(job, row["all_overrides"])
    row["iterations"] = max((c[-1][0] for c in curves.values() if c), default=0)
    row["wall_s"] = status.get("wall_s_total", status.get("wall_s"))
    row["status"] = status.get("status", "unknown")
    return row


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


ALWAYS_HIDDEN = ("resume", "hydra.run.dir")  # how a job was started, not what it trained


def loss_name(job: Path, overrides: list[str]) -> str:
    """The job's loss option (bce, hinge, ...): its override, else Hydra's recorded choice."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("loss=")]
    if given:
        return given[-1]
    hydra_file = job / ".hydra" / "hydra.yaml"
    if hydra_file.is_file():
        saved = recorded.read_yaml(hydra_file, "Hydra's record of the job")
        try:
            return str(saved["hydra"]["runtime"]["choices"]["loss"])
        except (KeyError, TypeError):
            return "?"
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
    return " ".join(str(value).split())  # a value from a file never breaks a line or a row


def md_cell(value) -> str:
    """A Markdown table cell: ``|`` and the characters that start markup are escaped."""
    return escape(cell(value))


def markdown(rows: list[dict], cols: list[str]) -> str:
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(md_cell(row[c]) for c in cols) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_cell(value) -> str:
    """A spreadsheet opening the CSV runs a cell that starts a formula (``=HYPERLINK(...)``):
    such a cell is written as text (a leading apostrophe, as OWASP recommends)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and \
        not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def csv_text(rows: list[dict], cols: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(cols)
    writer.writerows([[csv_cell(row[c]) for c in cols] for row in rows])
    return out.getvalue()


def swept_values(rows: list[dict]) -> dict[str, list[str]]:
    """key -> each job's value, for the override keys whose value differs between jobs."""
    parsed = [dict(o.split("=", 1) for o in row["all_overrides"] if "=" in o) for row in rows]
    keys = sorted({k for p in parsed for k in p})
    return {k: [p.get(k, "-") for p in parsed] for k in keys if len({p.get(k) for p in parsed}) > 1}


def plot(rows: list[dict]) -> tuple[bytes, list[str]]:
    """Top row: FID over iterations per job, then final FID per swept value (where FID was
    logged). Bottom row: one panel per loss option with the losses of its jobs, since losses
    of different options are on different scales. Returns the PNG and the panels' titles."""
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
    fig, axes = plt.subplots(nrows, ncols, figsize=(1 + 5 * ncols, 5 * nrows + 0.5),
                             squeeze=False)
    if top:
        plot_curves(axes[0][0], rows, "metrics/fid", "metrics/fid per job")
        plot_finals(axes[0][1:top], rows, swept)
    for ax, (loss, jobs) in zip(axes[-1], by_loss.items()):
        for tag in LOSSES:
            plot_curves(ax, jobs, tag, plain(f"losses of the loss={loss} jobs"),
                        style=_style(tag))
    titles = [ax.get_title() for ax in axes.flat if ax.get_title()]
    for ax in axes.flat:
        if not ax.get_title():
            ax.axis("off")  # a grid cell left over: rows have different panel counts
    fig.suptitle(SAME_LOSS_NOTE, fontsize="small")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, dpi=100, format="png")
    plt.close(fig)
    return png.getvalue(), titles


def plain(text: str, limit: int = 80) -> str:
    """Text from a file as matplotlib shows it literally: ``$...$`` would be parsed as math."""
    text = " ".join(str(text).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return text.replace("\\", "\\\\").replace("$", "\\$")


def _style(tag: str) -> str:
    return "-" if tag == "loss/g" else ":"


def plot_curves(ax, rows: list[dict], tag: str, title: str, style: str = "-") -> None:
    for row in rows:
        points = row["curves"].get(tag, [])
        if points:
            ax.plot(*zip(*points), style, marker=".",
                    label=plain(f"{row['job']} {tag}: {row['overrides']}"))
    ax.set(xlabel="iteration", ylabel=tag if style == "-" else "loss", title=title)
    if ax.lines:  # below the panel, where it hides no curve
        ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.15),
                  ncol=1, frameon=False)


def plot_finals(axes, rows: list[dict], swept: dict[str, list[str]]) -> None:
    finals = [r["fid_final"] if r["fid_final"] is not None else math.nan for r in rows]
    for ax, (key, values) in zip(axes, swept.items()):
        labels = sorted(set(values))
        ax.scatter([labels.index(v) for v in values], finals)
        ax.set_xticks(range(len(labels)), [plain(v, 30) for v in labels], rotation=30,
                      fontsize="small")
        ax.set(xlabel=plain(key), ylabel="final metrics/fid", title=plain(f"final FID per {key}"))


def report(folder: Path) -> str:
    """Writes report.csv, report.md, report.png and report.html in the sweep (or study) folder;
    returns the table. Everything is read and made first, then each file is written whole
    (never through a link the folder holds): a damaged job leaves no half-written report."""
    # Reading a job's TensorBoard events takes ~0.1-1 s: a large sweep shows its progress.
    study_lines = study_summary(folder)
    rows = sort_rows([summarize(job) for job in tracked(find_jobs(folder), "Reading jobs", "job",
                                                        min_total=20)])
    internal = TUNE_KEYS if study_lines else ()
    for row in rows:
        row["all_overrides"] = [shown_override(o) for o in row["all_overrides"]
                                if _key(o) not in internal and not _key(o).startswith(internal)]
    shared = drop_shared_overrides(rows)
    cols = columns(rows)
    table = markdown(rows, cols)
    kind = "Study" if study_lines else "Sweep"
    common = f"Overrides of every job: {md_cell(' '.join(shared))}\n\n" if shared else ""
    study = "".join(f"{md_cell(line)}\n\n" for line in study_lines)
    png, _ = plot(rows)
    html_page = page(folder, rows, cols, shared, study_lines, SAME_LOSS_NOTE, cell, kind)
    for name, data in (("report.csv", csv_text(rows, cols).encode("utf-8")),
                       ("report.md", f"# {kind} {md_cell(folder)}\n\n{common}{table}\n{study}"
                                     f"{SAME_LOSS_NOTE}\n".encode("utf-8")),
                       ("report.png", png), ("report.html", html_page.encode("utf-8"))):
        write_bytes(folder / name, data, folder)
    return table + ("\n" + "\n\n".join(study_lines) + "\n" if study_lines else "")


# What `ganrun tune` adds to every trial's command line: the same for all, not what the study
# searched.
TUNE_KEYS = ("optimized_metric", "metrics.every_n_iterations", "callbacks.pruning",
             "callbacks.hparams.swept")


def shown_override(override: str) -> str:
    """``optimizer.lr=0.00012520653814999459`` as ``optimizer.lr=0.0001252``."""
    key, sep, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    digits = len(value.lower().split("e")[0].replace("-", "").replace(".", "").strip("0"))
    if digits <= 6:
        return override  # as the user wrote it (2e-4, 0.5, 10)
    return f"{key}{sep}{number:.4g}"


def study_summary(folder: Path) -> list[str]:
    """For a `ganrun tune` study: its best trial, the pruned trials and Optuna's parameter
    importances (fANOVA), read from the study's journal file."""
    from ganrun import study as studies

    if not (folder / studies.STUDY_FILE).is_file():
        return []
    damaged = None
    try:
        studies.check_journal(folder / studies.STUDY_FILE, repair=False)
    except UserError as err:
        damaged = str(err)
    study = studies.load(folder, write=False)  # read-only: the folder may be someone else's
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
    if damaged:
        lines.append(f"Only the trials recorded before the damage are shown: {damaged}")
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
