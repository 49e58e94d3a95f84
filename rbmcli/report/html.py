"""`rbm report`: one self-contained HTML page for a run folder.

Every image is inlined as a base64 data URI and the style sheet is inline, so the page has no
external resources: it can be mailed, archived or opened offline. Sections: configuration,
metric curves (regenerated from metrics.jsonl), the last epoch's metrics, first-layer filters,
the sample grid of every epoch, the last reconstructions, hidden activity, evaluation results
(eval.json) when present.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from pathlib import Path

from rbmcli.errors import RbmError
from rbmcli.files import write_atomic
from rbmcli.train.run_folder import RunFolder, read_metrics
from rbmcli.report.pictures import curves_figure, figure_png, filter_grid, flatten_row

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}
td.num{text-align:right;font-family:monospace}img{max-width:100%;image-rendering:pixelated}
figure{display:inline-block;margin:.5em}figcaption{font-size:.85em;color:#555}"""


def fmt(value) -> str:
    """Numbers for humans: floats to 4 significant digits, everything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def table(rows: list[dict]) -> str:
    """An HTML table: one column per key (in first-seen order), one line per row."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
    body = "".join("<tr>" + "".join(_cell(row.get(k, "")) for k in keys) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td{" class=num" if numeric else ""}>{html.escape(fmt(value))}</td>'


def img(png: bytes, caption: str, pixels: bool = False) -> str:
    """A figure with the PNG inlined; pixels=True shows a small image grid enlarged (integer
    factor, nearest neighbour) to about 320 px wide so 5×7 tiles stay visible."""
    data = base64.b64encode(png).decode("ascii")
    cap, style = html.escape(caption), ""
    if pixels:
        from PIL import Image

        with Image.open(io.BytesIO(png)) as im:
            style = f' style="width:{im.width * max(1, 320 // im.width)}px"'
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{cap}"{style}>'
            f"<figcaption>{cap}</figcaption></figure>")


def eval_rows(value) -> list[dict]:
    """eval.json as table rows: what `rbm evaluate` writes ({"checkpoint", "results": [rows]}),
    a list of rows, a dict of named rows, or one flat dict."""
    if isinstance(value, dict) and isinstance(value.get("results"), list):
        return [_eval_row(r) for r in value["results"]]
    if isinstance(value, list):
        return [r if isinstance(r, dict) else {"value": r} for r in value]
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        return [{"name": k, **v} for k, v in value.items()]
    return [value] if isinstance(value, dict) else [{"value": value}]


def _eval_row(row) -> dict:
    """One `rbm evaluate` result as a flat table row: metric, value, seconds, then details."""
    if not isinstance(row, dict):
        return {"value": row}
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    head = {k: row[k] for k in ("metric", "value", "seconds", "checkpoint") if k in row}
    return {**head, **{k: v for k, v in details.items() if not isinstance(v, (list, dict))}}


def layer_warnings(row: dict, limit: float = 0.99) -> list[str]:
    """Warnings for the layers of a metrics row whose hidden units are (almost) all dead or
    saturated (dead + saturated fraction >= limit): such a layer passes no information on,
    which is what a diverged run (e.g. a too large --lr) looks like."""
    dead, sat = row.get("dead_fraction") or {}, row.get("saturated_fraction") or {}
    out = []
    for layer in sorted(set(dead) | set(sat), key=lambda k: int(k) if str(k).isdigit() else 0):
        d, s = float(dead.get(layer, 0.0)), float(sat.get(layer, 0.0))
        if d + s >= limit:
            out.append(f"layer {layer}: {d:.0%} of the hidden units are dead and {s:.0%} saturated after epoch "
                       f"{row.get('epoch', '?')}: training has diverged or collapsed; lower --lr")
    return out


def _epoch_of(path: Path) -> int:
    return int(re.search(r"epoch(\d+)", path.name).group(1))


def _filters_png(run: RunFolder) -> bytes | None:
    """filters.png, or a grid drawn from model.safetensors when the run has none."""
    if run.filters_png.is_file():
        return run.filters_png.read_bytes()
    if not run.model.is_file():
        return None
    from torchvision.utils import make_grid
    from PIL import Image

    from rbmcli.train.checkpoint import load_model

    dbn, info = load_model(run.model)
    tiles = filter_grid(dbn, tuple(info["input_shape"]))
    grid = make_grid(tiles, nrow=max(1, round(len(tiles) ** 0.5)), padding=2)
    buf = io.BytesIO()
    Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy()).save(buf, format="PNG")
    return buf.getvalue()


def sections(run_dir: Path, rows: list[dict]) -> list[str]:
    """The page body, one HTML fragment per section."""
    out, run = [f"<h1>Run {html.escape(run_dir.resolve().name)}</h1>"], RunFolder(run_dir)
    cfg_file = run.config
    if cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        out.append("<h2>Configuration</h2>" + table([{"option": k, "value": v} for k, v in cfg.items()]))
    out.append("<h2>Metric curves</h2>" + img(figure_png(curves_figure(rows)[0]), "metrics.jsonl vs epoch"))
    last = {"epoch": rows[-1]["epoch"], "step": rows[-1].get("step"), "seconds": rows[-1].get("seconds"),
            **flatten_row(rows[-1])}
    out.append(f"<h2>Last epoch ({last['epoch']})</h2>"
               + table([{"metric": k, "value": v} for k, v in last.items() if v is not None]))
    filters = _filters_png(run)
    if filters is not None:
        out.append("<h2>First-layer filters</h2>" + img(filters, "filters (each tile min–max scaled)", True))
    samples = sorted(run.per_epoch("samples"), key=_epoch_of)
    if samples:
        out.append("<h2>Samples</h2>" + "".join(img(p.read_bytes(), f"epoch {_epoch_of(p)}", True) for p in samples))
    if run.chains_png.is_file():
        out.append("<h2>Gibbs chains (last epoch)</h2>" + img(run.chains_png.read_bytes(),
                                                             "rows: 8 chains; columns: time", True))
    recons = sorted(run.per_epoch("recon"), key=_epoch_of)
    if recons:
        out.append(f"<h2>Reconstructions (epoch {_epoch_of(recons[-1])})</h2>"
                   + img(recons[-1].read_bytes(), "data (top half) above their stack reconstructions", True))
    if run.activity_png.is_file():
        out.append("<h2>Hidden activity</h2>" + img(run.activity_png.read_bytes(),
                                                    "mean activity per unit; shaded: dead < 1 %, saturated > 99 %"))
    if run.eval_json.is_file():
        try:
            results = json.loads(run.eval_json.read_text())
        except json.JSONDecodeError:
            raise RbmError(f"{run.eval_json} is not valid JSON") from None
        out.append("<h2>Evaluation</h2>" + table(eval_rows(results)))
    return out


def write_report(run_dir: str | Path, out_html: str | Path | None = None, force: bool = False) -> Path:
    """Write one self-contained HTML page for run_dir (default run_dir/report.html), atomically;
    an existing page is replaced only with force=True."""
    from rbmcli.files import check_output

    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise RbmError(f"{run_dir} is a file, not a run folder: pass the folder that `rbm train` wrote")
    if not run_dir.is_dir():
        raise RbmError(f"run folder {run_dir} does not exist")
    check_output(Path(out_html) if out_html else run_dir / "report.html", force=force, option="--out")
    body = "\n".join(sections(run_dir, read_metrics(run_dir)))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>rbm report: {html.escape(run_dir.resolve().name)}</title><style>{STYLE}</style></head>"
            f"<body>\n{body}\n</body></html>\n")
    out = Path(out_html) if out_html else run_dir / "report.html"
    return write_atomic(out, page)
