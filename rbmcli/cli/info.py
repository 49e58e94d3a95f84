"""`rbm info`: describe a checkpoint without loading any data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rbmcli.cli.common import err, esc, out, table


def info(
    ckpt: Annotated[Path, typer.Argument(help="A checkpoint (.safetensors) or a run folder.")],
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the description as JSON to FILE ('-': stdout).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing --json file.")] = False,
):
    """Describe a checkpoint without loading any data: model, units, config, training progress.

    Example: rbm info runs/fm/model.safetensors
    """
    from rbmcli.train.checkpoint import describe_checkpoint
    from rbmcli.files import check_output, write_text_or_stdout

    check_output(json_out, force=force, option="--json")
    if ckpt.is_dir() and (ckpt / "model.safetensors").is_file():
        ckpt = ckpt / "model.safetensors"
    d = describe_checkpoint(ckpt)
    if json_out is not None and str(json_out) == "-":
        write_text_or_stdout("-", json.dumps(d, indent=2))
        return
    out.print(table(f"rbm info: {ckpt}", {"format": d["format"], "rbmcli version": d["rbmcli_version"],
                                            "dataset": d["dataset"], "input (C, H, W)": tuple(d["input_shape"]),
                                            "parameters": f"{d['parameters']:,}", "training": d["progress"]}))
    layers = Table(title="layers")
    for col in ["layer", "kind", "visible", "hidden", "visible units", "hidden units"]:
        layers.add_column(col)
    for i, layer in enumerate(d["layers"]):
        layers.add_row(*(esc(x) for x in (i, layer["kind"], layer["visible_shape"], layer["hidden_shape"],
                                          layer["visible_units"], layer["hidden_units"])))
    out.print(layers)
    if d["config"]:
        out.print(table("config", d["config"]))
    if json_out is not None:
        err.print(f"wrote {esc(write_text_or_stdout(json_out, json.dumps(d, indent=2)))}")
