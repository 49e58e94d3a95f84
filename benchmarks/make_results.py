"""Render benchmarks/results/*.json as the tables of docs/results.md (between markers).

    python benchmarks/make_results.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "results.md"
START, END = "<!-- tables:start -->", "<!-- tables:end -->"
PAPER = {("mnist", 1): 2.44, ("mnist", 255): 1.23, ("fashion-mnist", 1): 13.12, ("fashion-mnist", 255): 9.26}


def rate(r: dict) -> str:
    """The learning rate, with its decay when there is one: "0.03" or "0.03 → 0 linear"."""
    decay = r.get("lr_decay", "none")
    return f"{r.get('lr', 0.03):g}" + ("" if decay == "none" else f" → 0 {decay}")


def load(name: str) -> list[dict]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else []


def table1() -> str:
    lines = ["### Table 1: SVM test error (full 60k train / 10k test)", "",
             "| dataset | N | arch | lr | mode | epochs | SVM error | C | paper | wall (train + SVM) | SVM protocol | command |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in load("table1"):
        paper = PAPER.get((r["dataset"], r["units_N"]), "")
        lines.append(f"| {r['dataset']} | {r['units_N']} | {r['arch']} | {rate(r)} | {r.get('mode', '')} | {r['epochs']} "
                     f"| **{r['svm_error_percent']:.2f} %** | {r['svm']['C']:g} | {paper} % | {r['wall_seconds']:.0f} s "
                     f"({r['train_seconds']:.0f} + {r['wall_seconds'] - r['train_seconds']:.0f}) "
                     f"| {r.get('svm_protocol', '')} | `{r['command']}` |")
    return "\n".join(lines)


def learning_curves() -> str:
    lines = ["### Learning curves: SVM error against epochs (C chosen on validation at every point)", "",
             "| run | dataset | N | arch | lr | mode | epoch | train time | validation error | test error | C | SVM time | command |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(load("learning_curves"), key=lambda r: (r["run"], r["epoch"])):
        lines.append(f"| {Path(r['run']).name} | {r['dataset']} | {r['units_N']} | {r['arch']} | {rate(r)} "
                     f"| {r['mode']} | {r['epoch']} "
                     f"| {r['train_seconds']:.0f} s | {r['val_error_percent']:.2f} % | **{r['svm_error_percent']:.2f} %** "
                     f"| {r['C']:g} | {r['svm_seconds']:.0f} s | `{r['command']}` |")
    return "\n".join(lines)


def peers() -> str:
    lines = ["### Peers, same splits and SVM protocol", "", "| dataset | model | SVM error | seconds | command |",
             "|---|---|---|---|---|"]
    if not load("peers"):
        lines.append("| – | not run to the end this session (`python benchmarks/peers.py --dataset mnist`) | | | |")
    for r in load("peers"):
        lines.append(f"| {r['dataset']} | {r['model']} | {r['svm_error_percent']:.2f} % | {r['seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def ablations() -> str:
    lines = ["### Ablations (MNIST, 20k images for the RBM and the SVM, 5 epochs, one change a row)", "",
             "| change | arch | N | lr | negatives | mode | SVM error | recon RMSE | train s | command |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in load("ablations"):
        m = r.get("final_metrics", {})
        lines.append(f"| {r['tag']} | {r['arch']} | {r['units_N']} | {r['lr']} | {r['negatives']} | {r['mode']} "
                     f"| {r['svm_error_percent']:.2f} % | {m.get('stack_recon_rmse', float('nan')):.4f} "
                     f"| {r['train_seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def loglik() -> str:
    lines = ["### Log-likelihood, binarised MNIST, binary RBM 784-500 (AIS, ±3σ)", "",
             "| model | negatives | lr | lr decay | epochs | test log-likelihood | ±3σ interval | log Z | train s | AIS s | command |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in load("loglik"):
        model = "sklearn BernoulliRBM" if r.get("model", "").startswith("sklearn") else "rbmcli"
        lines.append(f"| {model} | {r['negatives']} | {r.get('lr', '')} | {r.get('lr_decay', 'none')} | {r['epochs']} | **{r['test_log_likelihood_nats']:.2f} nats** "
                     f"| [{r['low']:.2f}, {r['high']:.2f}] | {r['log_z']:.2f} | {r['train_seconds']:.0f} "
                     f"| {r['ais_seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def loglik_check() -> str:
    lines = ["### The same log-likelihoods checked from both sides (forward AIS errs high, reverse AIS low)", "",
             "| checkpoint | epochs | lr | forward AIS (runs) | ±3σ | reverse AIS (runs, burn-in) | ±3σ | seconds | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in load("loglik_check"):
        f, b = r["forward"], r["reverse"]
        lines.append(f"| {Path(r['checkpoint']).parent.name} | {r['epochs']} | {rate(r)} "
                     f"| **{f['test_log_likelihood_nats']:.2f}** ({f['runs']}) | [{f['interval_3sigma'][0]:.2f}, {f['interval_3sigma'][1]:.2f}] "
                     f"| **{b['test_log_likelihood_nats']:.2f}** ({b['runs']}, {b['burn_in_gibbs_steps']} Gibbs steps) "
                     f"| [{b['interval_3sigma'][0]:.2f}, {b['interval_3sigma'][1]:.2f}] | {f['seconds'] + b['seconds']:.0f} | `{r['command']}` |")
    return "\n".join(lines)


def fid() -> str:
    lines = ["### FID of samples (pytorch-fid Inception, pool3) against training images", "",
             "| dataset | N | model | FID | samples / real images | Gibbs steps | seconds | grid | command |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in load("fid"):
        grid = f"[png]({Path(r['grid']).relative_to('docs')})" if r.get("grid") else ""
        lines.append(f"| {r['dataset']} | {r['units_N'] or '–'} | {r['model']} | **{r['fid']:.1f}** "
                     f"| {r['n_fake']} / {r['n_real']} | {r.get('gibbs_steps', '–')} | {r['seconds']:.0f} "
                     f"| {grid} | `{r['command']}` |")
    return "\n".join(lines)


def plot_learning_curves() -> None:
    """docs/img/learning-curves.png: validation and test SVM error against epochs, one line per run."""
    rows = load("learning_curves")
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for run in sorted({r["run"] for r in rows}):
        pts = sorted((r["epoch"], r["val_error_percent"], r["svm_error_percent"]) for r in rows if r["run"] == run)
        first = next(r for r in rows if r["run"] == run)
        label = f"{first['dataset']} {first['arch']} lr {first.get('lr', 0.03):g} ({Path(run).name})"
        line, = ax.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=f"{label}: test")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "s--", color=line.get_color(), alpha=0.6, label="  validation")
    paper = {d for d in (r["dataset"] for r in rows)}
    for d in paper:
        ax.axhline(PAPER[(d, 255)], color="gray", lw=0.8, ls=":")
        ax.text(0.5, PAPER[(d, 255)], f" paper, {d} N=255", va="bottom", fontsize=7, color="gray")
    ax.set_xlabel("epoch")
    ax.set_ylabel("linear-SVM error, %")
    ax.legend(fontsize=6)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "learning-curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main() -> None:
    plot_learning_curves()
    body = "\n\n".join([table1(), learning_curves(), peers(), loglik(), loglik_check(), fid(), ablations()])
    text = DOC.read_text() if DOC.is_file() else f"# Results\n\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(body)


if __name__ == "__main__":
    main()
