"""Checkpoints: safetensors tensors plus string metadata that describe the model.

Model file (`model.safetensors`): tensors `layers.{i}.weight`, `layers.{i}.visible_bias`,
`layers.{i}.hidden_bias` (natural parameters, float32) and, for a centered layer only,
`layers.{i}.visible_offset` (its μ; absent means zero, so files of uncentered models are
those of earlier releases); metadata `format` = FORMAT,
`rbmcli_version`, `model` (JSON: input_shape and the layer specs), `config` (the TrainConfig
JSON), `dataset`, `size`, `epoch`, `step`. Training state (`*.state.safetensors`): Adam moments
`optim.{name}.exp_avg|exp_avg_sq|step`, generator states `rng.{name}` and persistent chains
`chains.{i}`, so that `--resume` continues exactly. Both written atomically (rbmcli.files).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from rbmcli import __version__
from rbmcli.model.dbn import DBN
from rbmcli.errors import RbmError
from rbmcli.files import write_atomic
from rbmcli.train.adam import Adam
from rbmcli.model.rbm import LayerSpec
from rbmcli.model.units import Units

FORMAT = "rbmcli-dbn/1"
STATE_FORMAT = "rbmcli-state/1"
MAX_HEADER = 100 * 1024 * 1024  # safetensors header bigger than this is not a checkpoint of ours
OFFSET = "visible_offset"  # the centering offset's tensor name within a layer
MAX_SIDE = 4096  # input images larger than this are not a model of ours (bounds sampling memory)


def atomic_save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file so that `path` is either the old file or the complete new one
    (rbmcli.files.write_with: temporary file, fsync, mode 0644, rename; a full disk or a
    read-only folder is one RbmError and the old file stays intact)."""
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    write_atomic(path, data)


def model_metadata(dbn: DBN, input_shape: tuple[int, ...], extra: dict[str, str]) -> dict[str, str]:
    model = {"input_shape": list(input_shape), "layers": [s.to_dict() for s in dbn.specs]}
    return {"format": FORMAT, "rbmcli_version": __version__, "model": json.dumps(model), **extra}


def save_model(path: Path, dbn: DBN, input_shape: tuple[int, ...], extra: dict[str, str]) -> None:
    """Save the DBN's parameters (float32) and its self-description."""
    tensors = {k: v.float() for k, v in dbn.state_dict().items()
               if not (k.endswith(OFFSET) and not v.any())}
    atomic_save(tensors, path, model_metadata(dbn, input_shape, extra))


def read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """All tensors and the metadata of a safetensors file; any defect becomes an RbmError."""
    path = Path(path)
    if path.is_dir():
        from rbmcli.train.run_folder import RunFolder  # run_folder imports this module

        model = RunFolder(path).model
        hint = f"; did you mean {model}?" if model.is_file() else ""
        raise RbmError(f"{path} is a folder, not a checkpoint file (.safetensors){hint}")
    if not path.is_file():
        raise RbmError(f"checkpoint not found: {path}")
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > min(MAX_HEADER, size - 8):
            raise ValueError("bad header length")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except RbmError:
        raise
    except Exception as e:  # safetensors raises several types on corrupt files
        raise RbmError(f"{path} is not a valid safetensors checkpoint ({str(e).splitlines()[0][:120]})") from None
    return tensors, meta


def load_model(path: Path) -> tuple[DBN, dict]:
    """Rebuild the DBN from a checkpoint. Returns (dbn, info) with info = the metadata, its
    `model` and `config` parsed from JSON."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != FORMAT:
        found = meta.get("format", "no format field")
        raise RbmError(f"{path} is not an rbmcli checkpoint of format {FORMAT} (found: {found})")
    try:
        model = json.loads(meta["model"])
        specs = [LayerSpec.from_dict(d) for d in model["layers"]]
        input_shape = tuple(model["input_shape"])
        expected = _tensor_shapes(specs, input_shape)
        config = json.loads(meta.get("config", "{}"))
        if not isinstance(config, dict):
            raise ValueError("config is not a JSON object")
    except Exception as e:  # also a usage RbmError from Units/conv_out: here it is a bad file (exit 1)
        raise RbmError(f"{path}: malformed model description in metadata ({type(e).__name__}: {e})"[:300]) from None
    for i, s in enumerate(specs):  # an uncentered layer's offset is not stored: zero
        tensors.setdefault(f"layers.{i}.{OFFSET}", torch.zeros(s.visible_shape[0], dtype=torch.float32))
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise RbmError(f"{path}: tensors do not match the model (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, t in tensors.items():
        if tuple(t.shape) != expected[name] or not t.dtype.is_floating_point:
            raise RbmError(f"{path}: tensor {name} has shape {tuple(t.shape)} {t.dtype}, "
                           f"expected {expected[name]} float")
        if not torch.isfinite(t).all():
            raise RbmError(f"{path}: tensor {name} holds NaN or infinite values")
    dbn = DBN(specs, init_std=0.0)  # only now: its size is bounded by the tensors actually in the file
    dbn.load_state_dict({k: v.float() for k, v in tensors.items()})
    info = dict(meta, model=model, input_shape=input_shape, config=config)
    return dbn, info


def _tensor_shapes(specs: list[LayerSpec], input_shape: tuple) -> dict[str, tuple[int, ...]]:
    """The tensor shapes that layer specs read from metadata imply; ValueError (or RbmError) if
    the specs are invalid, or do not chain from input_shape (C, H, W) layer by layer."""
    c, h, w = input_shape
    if any(type(x) is not int for x in input_shape) or c not in (1, 3) or not (1 <= min(h, w) <= max(h, w) <= MAX_SIDE):
        raise ValueError(f"input shape {input_shape} is not (1 or 3, H, W) with sides 1..{MAX_SIDE}")
    if not specs:
        raise ValueError("no layers")
    shapes, below = {}, input_shape
    for i, s in enumerate(specs):
        sizes = [*s.visible_shape, s.hidden] + ([s.kernel, s.stride] if not s.is_dense else [])
        if s.kind not in ("dense", "conv") or any(type(x) is not int for x in [*sizes, s.padding]) \
                or min(sizes) < 1 or s.padding < 0:
            raise ValueError(f"layer {i} has an unknown kind or non-positive sizes")
        if s.visible_shape != ((math.prod(below),) if s.is_dense else below):
            raise ValueError(f"layer {i} visible shape {s.visible_shape} does not follow {below}")
        for u in (s.visible_units, s.hidden_units):
            if Units.make(u.n, u.k, u.activation) != u:
                raise ValueError(f"layer {i} has invalid units {u}")
        shapes.update({f"layers.{i}.weight": s.weight_shape, f"layers.{i}.visible_bias": (s.visible_shape[0],),
                       f"layers.{i}.hidden_bias": (s.hidden,), f"layers.{i}.{OFFSET}": (s.visible_shape[0],)})
        below = s.hidden_shape
    return shapes


def state_path(model_path: Path) -> Path:
    """The training-state file beside a model file: model.safetensors → model.state.safetensors."""
    p = Path(model_path)
    return p.with_name(p.name.removesuffix(".safetensors") + ".state.safetensors")


def save_state(path: Path, optimizer: Adam, *, names: list[str],
               generators: dict[str, torch.Generator], chains: list, counters: dict[str, int]) -> None:
    """Parameters, Adam moments per named parameter, generator states, persistent chains,
    counters. The parameters make the state file a complete checkpoint on its own: it is
    written before the model file, so after a kill between the two it is the newer one."""
    tensors = {}
    for name, p in zip(names, (p for g in optimizer.param_groups for p in g["params"])):
        tensors[f"param.{name}"] = p.detach()
        for key, value in optimizer.state.get(p, {}).items():
            tensors[f"optim.{name}.{key}"] = torch.as_tensor(value).float().reshape(-1) if key == "step" else value
    for key, g in generators.items():
        tensors[f"rng.{key}"] = g.get_state()
    for i, c in enumerate(chains):
        if c is not None:
            tensors[f"chains.{i}"] = c
    meta = {"format": STATE_FORMAT, **{k: str(v) for k, v in counters.items()}}
    atomic_save(tensors, path, meta)


def _restore_generator(g: torch.Generator, state: torch.Tensor, counters_seed: str) -> None:
    """Restore a generator's state; a state of another device type (a run moved from CUDA to
    the CPU, or back) cannot be, so the generator is reseeded from the step: the run goes on,
    its random draws no longer those of an uninterrupted run on the first device."""
    try:
        g.set_state(state)
    except (RuntimeError, ValueError):
        g.manual_seed(int(counters_seed) if counters_seed.isdigit() else 0)


def load_state(path: Path, optimizer: Adam, *, names: list[str],
               generators: dict[str, torch.Generator], n_layers: int, device,
               model_step: int | None = None) -> tuple[list, dict[str, int]]:
    """Restore what `save_state` wrote, the parameters too; returns (chains, counters). A state
    without parameters (older rbmcli) must be from the model file's step `model_step`."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != STATE_FORMAT:
        raise RbmError(f"{path} is not an rbmcli training state (format {meta.get('format')})")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for name, p in zip(names, params):
        for key in ("param", "optim"):
            t = tensors.get(f"param.{name}" if key == "param" else f"optim.{name}.exp_avg", p)
            if t.shape != p.shape or not torch.isfinite(t).all():
                raise RbmError(f"{path}: {key} tensor of {name} does not fit the model or is not finite")
        with torch.no_grad():
            p.copy_(tensors.get(f"param.{name}", p))
        keys = {k.rsplit(".", 1)[1] for k in tensors if k.startswith(f"optim.{name}.")}
        if keys:
            st = {key: tensors[f"optim.{name}.{key}"].to(device) for key in keys}
            if "step" in st:  # fused Adam keeps its step on the parameter's device
                fused = any(g.get("fused") for g in optimizer.param_groups)
                st["step"] = st["step"].reshape(()).to(p.device if fused else "cpu")
            optimizer.state[p] = st
    for key, g in generators.items():
        if f"rng.{key}" in tensors:
            _restore_generator(g, tensors[f"rng.{key}"], counters_seed=meta.get("step", "0"))
    chains = [tensors[f"chains.{i}"].to(device) if f"chains.{i}" in tensors else None for i in range(n_layers)]
    try:
        counters = {k: int(meta[k]) for k in ("epoch", "batch", "step")}
    except (KeyError, ValueError):
        raise RbmError(f"{path}: the epoch/batch/step counters are missing or malformed") from None
    if model_step is not None and model_step != counters["step"] and not any(k.startswith("param.") for k in tensors):
        raise RbmError(f"{path} is from step {counters['step']} but the model from step {model_step} (killed between "
                       "the two writes?): it cannot be resumed exactly; start a new run with another --out")
    return chains, counters


def _units_text(u: Units) -> str:
    return f"N={u.n} k={u.k:.4g} {u.activation}"


def describe_checkpoint(path: Path) -> dict:
    """What `rbm info` shows, from the checkpoint alone (no dataset is loaded): format and
    version, dataset, input shape, parameter count, each layer's kind, shapes and units, the
    training config and how far training got (epoch and step of this file)."""
    dbn, info = load_model(path)
    cfg = info["config"]
    epoch, step = str(info.get("epoch", "")), str(info.get("step", ""))
    planned = cfg.get("epochs")
    if isinstance(planned, int) and cfg.get("mode") == "greedy":
        planned *= len(dbn.layers)
    progress = f"epoch {epoch or '?'}" + (f" of {planned}" if isinstance(planned, int) else "")
    progress += f", optimiser step {step}" if step else ""
    return {"checkpoint": str(path), "format": info.get("format"), "rbmcli_version": info.get("rbmcli_version", "?"),
            "dataset": info.get("dataset") or cfg.get("dataset", "?"), "input_shape": list(info["input_shape"]),
            "parameters": sum(p.numel() for p in dbn.parameters()),
            "layers": [{"kind": s.kind, "visible_shape": list(s.visible_shape), "hidden_shape": list(s.hidden_shape),
                        "visible_units": _units_text(s.visible_units), "hidden_units": _units_text(s.hidden_units),
                        "visible_n": s.visible_units.n, "hidden_n": s.hidden_units.n}
                       for s in dbn.specs],
            "epoch": int(epoch) if epoch.isdigit() else None, "step": int(step) if step.isdigit() else None,
            "progress": progress, "config": cfg}
