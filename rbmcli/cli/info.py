"""`rbm info`: describe a checkpoint without loading any data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rbmcli.cli.common import err, esc, out, refuse_overwrite, table


def unit_notes(layers: list[dict], cfg: dict) -> dict[int, str]:
    """{layer: why its hidden units are not the config's hidden_units} for each layer where
    they differ: the recipe's binary top RBM, or an @N in --arch."""
    notes = {}
    for i, layer in enumerate(layers):
        n, asked = layer.get("hidden_n"), cfg.get("hidden_units")
        if n is None or asked is None or n == asked:
            continue
        if i == len(layers) - 1 and n == 1 and cfg.get("binary_top"):
            notes[i] = f"binary top: binary_top (recipe {cfg.get('recipe', '?')}) overrides hidden_units {asked}"
        else:
            notes[i] = f"N={n} from --arch {cfg.get('arch', '?')} (@N), not hidden_units {asked}"
    return notes


def config_rows(layers: list[dict], cfg: dict) -> dict:
    """The config as saved, hidden_units annotated with the layers that do not have it."""
    rows = dict(cfg)
    other = [i for i in unit_notes(layers, cfg)]
    if other and "hidden_units" in rows:
        which = ", ".join(f"layer {i}: N={layers[i]['hidden_n']}" for i in other)
        rows["hidden_units"] = f"{cfg['hidden_units']} (overridden: {which}; see layers)"
    return rows


def info(
    ckpt: Annotated[Path, typer.Argument(help="A checkpoint (.safetensors) or a run folder.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the description as JSON to FILE ('-': stdout).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
):
    """Describe a checkpoint without loading any data: model, units, config, training progress.

    Example: rbm info runs/fm/model.safetensors
    """
    from rbmcli.train.checkpoint import describe_checkpoint
    from rbmcli.train.run_folder import RunFolder
    from rbmcli.files import write_text_or_stdout

    refuse_overwrite({"--json": json_out}, force)
    if ckpt.is_dir() and RunFolder(ckpt).model.is_file():
        ckpt = RunFolder(ckpt).model
    d = describe_checkpoint(ckpt)
    if json_out is not None and str(json_out) == "-":
        write_text_or_stdout("-", json.dumps(d, indent=2))
        return
    out.print(table(f"rbm info: {ckpt}", {"format": d["format"], "rbmcli version": d["rbmcli_version"],
                                            "dataset": d["dataset"], "input (C, H, W)": tuple(d["input_shape"]),
                                            "parameters": f"{d['parameters']:,}", "training": d["progress"]}))
    notes = unit_notes(d["layers"], d["config"])
    layers = Table(title="layers (the units each layer has)")
    for col in ["layer", "kind", "visible", "hidden", "visible units", "hidden units", "note"]:
        layers.add_column(col)
    for i, layer in enumerate(d["layers"]):
        layers.add_row(*(esc(x) for x in (i, layer["kind"], layer["visible_shape"], layer["hidden_shape"],
                                          layer["visible_units"], layer["hidden_units"], notes.get(i, ""))))
    out.print(layers)
    if d["config"]:
        out.print(table("config (as given; the layers above are what it built)", config_rows(d["layers"], d["config"])))
    if json_out is not None:
        err.print(f"wrote {esc(write_text_or_stdout(json_out, json.dumps(d, indent=2)))}")
