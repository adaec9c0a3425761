"""``report.html``: a sweep's report as one page that opens from disk (no server, no scripts):
the table, the study's summary, the plot of FID and loss curves, and each job's last sample grid.
Pictures are linked by their path relative to the sweep folder, so the page works where the
folder is moved or copied whole."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import quote

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f3f3f3}td.num{text-align:right}.jobs{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;width:260px}figure img{width:256px;image-rendering:pixelated}
figcaption{font-size:12px;word-break:break-all}"""


def page(folder: Path, rows: list[dict], cols: list[str], shared: list[str],
         study: list[str], note: str, cell, kind: str = "Sweep") -> str:
    """The page of ``folder/report.html``; ``cell`` formats a table value as the Markdown
    does. Everything from the jobs' files is escaped: job names, overrides and metric names
    come from folders that may be someone else's."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(kind)} "
             f"{esc(folder.name)}</title><style>{STYLE}</style></head><body>",
             f"<h1>{esc(kind)} {esc(str(folder))}</h1>"]
    if shared:
        parts.append(f"<p>Overrides of every job: <code>{esc(' '.join(shared))}</code></p>")
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(_cell(row[c], cell) for c in cols) + "</tr>" for row in rows)
    parts.append(f"<table id='jobs'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    parts += [f"<p class='study'>{esc(line)}</p>" for line in study]
    if rows:
        parts.append("<h2>Curves</h2><img id='plot' src='report.png' alt='FID and loss curves' "
                     "style='max-width:100%'>")
    grids = [(row, last_samples(folder / row["job"])) for row in rows]
    if any(grid for _, grid in grids):
        parts.append("<h2>Last samples of each job</h2><div class='jobs'>")
        for row, grid in grids:
            if grid is not None:
                source = quote(grid.relative_to(folder).as_posix())  # '#', '?' in job names
                parts.append(f"<figure><img src='{esc(source)}' alt='samples of "
                             f"{esc(row['job'])}'><figcaption>{esc(row['job'])}: "
                             f"{esc(row['overrides'] or '-')} ({esc(grid.stem)})</figcaption>"
                             "</figure>")
        parts.append("</div>")
    parts.append(f"<p><small>{esc(note)}</small></p></body></html>")
    return "\n".join(parts) + "\n"


def _cell(value, cell) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f"<td{' class=num' if numeric else ''}>{html.escape(cell(value))}</td>"


def last_samples(job: Path) -> Path | None:
    """The job's latest ``samples/step_<n>.png`` (the highest n), if it wrote any."""
    steps = [(int(m.group(1)), p) for p in (job / "samples").glob("step_*.png")
             if (m := re.fullmatch(r"step_(\d+)\.png", p.name)) and not p.is_symlink()]
    return max(steps)[1] if steps else None
