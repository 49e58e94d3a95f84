"""Render benchmarks/results/*.json as the tables of docs/results.md (between markers).

    python benchmarks/make_results.py

Rows marked "superseded" (a later row replaced them; the field says why) stay in the JSON
files as history and are left out of the tables. Also draws docs/img/learning-curves.png and
docs/img/learning-curves-rbf.png from the same rows.
"""

from __future__ import annotations

import json
from pathlib import Path

from rows import RESULTS, ROOT, current

DOC = ROOT / "docs" / "results.md"
START, END = "<!-- tables:start -->", "<!-- tables:end -->"
PAPER = {("mnist", 1): 2.44, ("mnist", 255): 1.23, ("fashion-mnist", 1): 13.12, ("fashion-mnist", 255): 9.26}


def rate(r: dict) -> str:
    """The learning rate, with its decay when there is one: "0.03" or "0.03 → 0 linear"."""
    decay = r.get("lr_decay") or "none"
    return f"{r.get('lr', 0.03):g}" + ("" if decay == "none" else f" → 0 {decay}")


def load(name: str) -> list[dict]:
    """The current rows of benchmarks/results/<name>.json: superseded ones left out."""
    path = RESULTS / f"{name}.json"
    return current(json.loads(path.read_text())) if path.is_file() else []


def markdown(title: str, columns: list[str], rows: list[list]) -> str:
    """A titled markdown table: one header row, then a line per row of cells."""
    lines = [f"### {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in cells) + " |" for cells in rows])


def table1() -> str:
    rows = [[r["dataset"], r["units_N"], r["arch"], rate(r), r.get("mode", ""), r["epochs"],
             f"**{r['svm_error_percent']:.2f} %**", f"{r['svm']['C']:g}", f"{PAPER.get((r['dataset'], r['units_N']), '')} %",
             f"{r['wall_seconds']:.0f} s ({r['train_seconds']:.0f} + {r['wall_seconds'] - r['train_seconds']:.0f})",
             r.get("svm_protocol", ""), f"`{r['command']}`"] for r in load("table1")]
    return markdown("Table 1: SVM test error (full 60k train / 10k test)",
                    ["dataset", "N", "arch", "lr", "mode", "epochs", "SVM error", "C", "paper", "wall (train + SVM)",
                     "SVM protocol", "command"], rows)


def learning_curves() -> str:
    rows = [[Path(r["run"]).name, r["dataset"], r["units_N"], r["arch"], rate(r), r["mode"], r["epoch"],
             f"{r['train_seconds']:.0f} s", f"{r['val_error_percent']:.2f} %", f"**{r['svm_error_percent']:.2f} %**",
             f"{r['C']:g}", f"{r['svm_seconds']:.0f} s", f"`{r['command']}`"]
            for r in sorted(load("learning_curves"), key=lambda r: (r["run"], r["epoch"]))]
    return markdown("Learning curves: SVM error against epochs (C chosen on validation at every point)",
                    ["run", "dataset", "N", "arch", "lr", "mode", "epoch", "train time", "validation error",
                     "test error", "C", "SVM time", "command"], rows)


def peers() -> str:
    rows = [[r["dataset"], r["model"], f"{r['svm_error_percent']:.2f} %", f"{r['seconds']:.0f}", f"`{r['command']}`"]
            for r in load("peers")]
    return markdown("Peers, same splits and SVM protocol", ["dataset", "model", "SVM error", "seconds", "command"],
                    rows or [["–", "no rows yet (`python benchmarks/experiments/peers.py --dataset mnist`)",
                              "", "", ""]])


def ablations() -> str:
    rows = [[r["tag"], r["arch"], r["units_N"], r["lr"], r["negatives"], r["mode"], f"{r['svm_error_percent']:.2f} %",
             f"{r.get('final_metrics', {}).get('stack_recon_rmse', float('nan')):.4f}", f"{r['train_seconds']:.0f}",
             f"`{r['command']}`"] for r in load("ablations")]
    return markdown("Ablations (MNIST, 20k images for the RBM and the SVM, 5 epochs, one change a row)",
                    ["change", "arch", "N", "lr", "negatives", "mode", "SVM error", "recon RMSE", "train s", "command"],
                    rows)


def loglik() -> str:
    rows = [["sklearn BernoulliRBM" if r.get("model", "").startswith("sklearn") else "rbmcli", r["negatives"],
             r.get("lr", ""), r.get("lr_decay", "none"), r["epochs"], f"**{r['test_log_likelihood_nats']:.2f} nats**",
             f"[{r['low']:.2f}, {r['high']:.2f}]", f"{r['log_z']:.2f}", f"{r['train_seconds']:.0f}",
             f"{r['ais_seconds']:.0f}", f"`{r['command']}`"] for r in load("loglik")]
    return markdown("Log-likelihood, binarised MNIST, binary RBM 784-500 (AIS, ±3σ)",
                    ["model", "negatives", "lr", "lr decay", "epochs", "test log-likelihood", "±3σ interval", "log Z",
                     "train s", "AIS s", "command"], rows)


def loglik_check() -> str:
    def interval(side: dict) -> str:
        low, high = side["interval_3sigma"]
        return f"[{low:.2f}, {high:.2f}]"

    rows = [[Path(r["checkpoint"]).parent.name, r["epochs"], rate(r),
             f"**{r['forward']['test_log_likelihood_nats']:.2f}** ({r['forward']['runs']})", interval(r["forward"]),
             (f"**{r['reverse']['test_log_likelihood_nats']:.2f}** ({r['reverse']['runs']}, "
              f"{r['reverse']['burn_in_gibbs_steps']} Gibbs steps)"), interval(r["reverse"]),
             f"{r['forward']['seconds'] + r['reverse']['seconds']:.0f}", f"`{r['command']}`"]
            for r in load("loglik_check")]
    return markdown("The same log-likelihoods checked from both sides (forward AIS errs high, reverse AIS low)",
                    ["checkpoint", "epochs", "lr", "forward AIS (runs)", "±3σ", "reverse AIS (runs, burn-in)", "±3σ",
                     "seconds", "command"], rows)


def fid() -> str:
    rows = [[r["dataset"], r["units_N"] or "–", r["model"], f"**{r['fid']:.1f}**", f"{r['n_fake']} / {r['n_real']}",
             r.get("gibbs_steps", "–"), f"{r['seconds']:.0f}",
             f"[png]({Path(r['grid']).relative_to('docs')})" if r.get("grid") else "", f"`{r['command']}`"]
            for r in load("fid")]
    return markdown("FID of samples (pytorch-fid Inception, pool3) against training images",
                    ["dataset", "N", "model", "FID", "samples / real images", "Gibbs steps", "seconds", "grid",
                     "command"], rows)


def screen() -> str:
    def recipe(r: dict) -> str:
        c = r["recipe"]
        parts = [c["arch"], f"N={c['visible_units']}" + ("" if c["hidden_units"] == c["visible_units"] else f" visible, {c['hidden_units']} hidden"),
                 f"lr {rate(c)}", c["negatives"]]
        if c.get("sparsity"):
            parts.append(f"sparsity λ {c['sparsity']:g}, p {c['sparsity_target']:g}")
        if c.get("weight_decay"):
            parts.append(f"weight decay {c['weight_decay']:g}")
        if c.get("seed"):
            parts.append(f"seed {c['seed']}")
        return ", ".join(parts)
    rows = [[Path(r["run"]).name, recipe(r), r["epoch"], r["kernel"] + (f" ({r['landmarks']} landmarks)" if r.get("landmarks") else "")
             + ("" if r.get("features", "top") == "top" else f", layers {r['features']} ({r['dimensions']} features)"),
             r["fit"], f"**{r['val_error_percent']:.2f} %**", f"{r['C']:g}",
             ", ".join(f"{s['C']:g}: {s['val_error_percent']:.2f}" for s in r["scan"]), f"{r['seconds']:.0f} s",
             f"`{r['command']}`"] for r in load("screen")]
    return markdown("Recipe screening: validation error of an SVM fit on 10k training images (test set not read)",
                    ["run", "recipe", "epoch", "SVM", "fit images", "validation error", "C", "scan (C: error %)",
                     "SVM time", "command"], rows)


def rbf_full() -> str:
    rows = [[r["dataset"], r["units_N"] or "–", r["checkpoint"], r["fit"], r["features"],
             ", ".join(("" if s.get("gamma_factor", 1) == 1 else f"γ×{s['gamma_factor']:g} ") + f"{s['C']:g}: {s['val_error_percent']:.2f}"
                       for s in r["scan"]), f"{r['C']:g}" + ("" if r.get("gamma_factor", 1) == 1 else f", γ×{r['gamma_factor']:g}"),
             f"{r['val_error_percent']:.2f} %", f"**{r['svm_error_percent']:.2f} %**", r["n_support"],
             f"{r['seconds']:.0f} s", f"`{r['command']}`"] for r in load("rbf_full")]
    return markdown("RBF-kernel SVM (libsvm) on the full training split: top features, C chosen on validation",
                    ["dataset", "N", "checkpoint", "fit images", "features", "scan (C: validation error %)", "C",
                     "validation error", "test error", "support vectors", "SVM time", "command"], rows)


def rbf_ensemble() -> str:
    rows = [[r["dataset"], r["units_N"], r["epoch"], len(r["members"]),
             ", ".join(f"{m['val_error_percent']:.2f} / {m['svm_error_percent']:.2f}" for m in r["members"]),
             f"{r['val_error_percent']:.2f} %", f"**{r['svm_error_percent']:.2f} %**", f"{r['seconds']:.0f} s",
             f"`{r['command']}`"] for r in load("rbf_ensemble")]
    return markdown("RBF SVMs of several DBNs (seeds, or epochs of one run) voting together: one-vs-one decision values summed",
                    ["dataset", "N", "epoch", "DBNs", "each DBN alone (validation / test error %)",
                     "ensemble validation error", "ensemble test error", "SVM time (all members)", "command"], rows)


def plot_curves(series: list[tuple[str, str, list[dict]]], ylabel: str, name: str) -> None:
    """docs/img/<name>: test (solid) and validation (dashed) SVM error against epochs, one line
    per (label, dataset, rows) of `series`, and the paper's N = 255 error of each dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, _, rows in series:
        pts = sorted((r["epoch"], r["val_error_percent"], r["svm_error_percent"]) for r in rows)
        line, = ax.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=f"{label}: test")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", color=line.get_color(), alpha=0.6, label="  validation")
    for d in sorted({d for _, d, _ in series}):
        ax.axhline(PAPER[(d, 255)], color="gray", lw=0.8, ls=":")
        ax.text(0.5, PAPER[(d, 255)], f" paper, {d} N=255", va="bottom", fontsize=7, color="gray")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def by_run(rows: list[dict], run_of) -> dict[str, list[dict]]:
    """Rows grouped by their run folder (`run_of(row)`), runs in sorted order."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(run_of(r), []).append(r)
    return dict(sorted(groups.items()))


def plot_learning_curves() -> None:
    """docs/img/learning-curves.png: linear-SVM error against epochs, one line per run."""
    series = [(f"{rs[0]['dataset']} {rs[0]['arch']} lr {rs[0].get('lr', 0.03):g} ({Path(run).name})", rs[0]["dataset"], rs)
              for run, rs in by_run(load("learning_curves"), lambda r: r["run"]).items()]
    if series:
        plot_curves(series, "linear-SVM error, %", "learning-curves.png")


def plot_rbf_curves() -> None:
    """docs/img/learning-curves-rbf.png: exact RBF-SVM error against epochs, one line per run
    folder with rows at three or more epochs (standardised features; an epoch measured twice,
    in two runs of the same trajectory, shows both points)."""
    rows = [r for r in load("rbf_full")
            if not r["checkpoint"].startswith("pixels:") and r.get("scaling", "standard") == "standard"]
    series = [(f"{rs[0]['dataset']} ({Path(run).name})", rs[0]["dataset"], rs)
              for run, rs in by_run(rows, lambda r: str(Path(r["checkpoint"]).parent)).items()
              if len({r["epoch"] for r in rs}) >= 3]
    if series:
        plot_curves(series, "RBF-SVM error, %", "learning-curves-rbf.png")


def main() -> None:
    plot_learning_curves()
    plot_rbf_curves()
    body = "\n\n".join([table1(), learning_curves(), rbf_full(), rbf_ensemble(), screen(), peers(), loglik(), loglik_check(), fid(), ablations()])
    text = DOC.read_text() if DOC.is_file() else f"# Results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(body)


if __name__ == "__main__":
    main()
