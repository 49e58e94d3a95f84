"""Fuzzing the inputs of `rbm sample` and `rbm reconstruct` (docs/reliability.md).

From one small valid checkpoint (conv 1×4×4 → 2×2×2, dense 8 → 3) ~250 broken files are made
deterministically: bit flips, truncations, bad header lengths, broken header JSON (dtypes,
shapes, offsets, huge sizes), broken metadata (format, model JSON, layer specs, units), missing,
extra and non-finite tensors. Each must exit 1 with one `Error:` line, no traceback, quickly
and without a large allocation. A mutation that still gives a valid file with finite values may
load ("accepted"). The same for damaged image files and a folder dataset with corrupt files.
"""

import json
import random
import math
import struct
import zlib

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from rbmcli.train.checkpoint import load_model, save_model
from rbmcli.cli import app
from rbmcli.train.config import TrainConfig
from rbmcli.data.datasets import load_dataset
from rbmcli.errors import RbmError
from rbmcli.train.trainer import build_dbn

runner = CliRunner()
SHAPE = (1, 4, 4)


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """(bytes, header dict, data bytes) of a valid checkpoint."""
    c = TrainConfig(arch="conv:2:2:2:0,dense:3", visible_units=255, hidden_units=3, device="cpu", init_std=0.5)
    path = tmp_path_factory.mktemp("valid") / "model.safetensors"
    save_model(path, build_dbn(c, SHAPE), SHAPE, {"config": c.to_json(), "dataset": "folder", "size": "4",
                                                  "epoch": "1", "step": "7"})
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))  # safetensors' order varies per process
    return pack(header, data), header, data


def pack(header, data: bytes, length: int | None = None) -> bytes:
    """A safetensors file from a header (dict, or raw JSON bytes) and the data bytes."""
    text = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def with_meta(header, **changes):
    """The header with metadata fields replaced (None deletes)."""
    h = json.loads(json.dumps(header))
    for k, v in changes.items():
        h["__metadata__"].pop(k) if v is None else h["__metadata__"].__setitem__(k, v)
    return h


def with_model(header, edit):
    """The header with the metadata's model JSON edited: edit(model dict) → new model (any JSON)."""
    model = json.loads(header["__metadata__"]["model"])
    return with_meta(header, model=json.dumps(edit(model)))


def layer_edit(i, key, value):
    def edit(model):
        if value is KeyError:
            model["layers"][i].pop(key)
        elif key.startswith("units."):
            model["layers"][i]["visible_units"][key[6:]] = value
        else:
            model["layers"][i][key] = value
        return model
    return edit


def with_tensor(header, name, **changes):
    h = json.loads(json.dumps(header))
    h[name].update(changes)
    return h


# --- the cases ------------------------------------------------------------------------------------

def byte_cases(raw: bytes, header: dict, data: bytes):
    """(name, bytes, may_load): bit flips, truncations, header lengths."""
    rng, n = random.Random(0), len(raw) - len(data)
    for pos in sorted(rng.sample(range(n), 40)):
        b = bytearray(raw)
        b[pos] ^= 1 << rng.randrange(8)
        yield f"flip-header@{pos}", bytes(b), True  # e.g. a digit of a version string: still valid
    for pos in sorted(rng.sample(range(n, len(raw)), 40)):
        b = bytearray(raw)
        b[pos] ^= 1 << rng.randrange(8)
        yield f"flip-data@{pos}", bytes(b), True  # a valid file: loads unless a value became NaN/inf
    for cut in sorted({0, 1, 4, 7, 8, 9, 16, 100, n // 2, n - 2, n - 1, n, n + 1, n + 4, n + 44, n + 100,
                       len(raw) - 4, len(raw) - 1} | set(rng.sample(range(len(raw)), 12))):
        yield f"truncate@{cut}", raw[:cut], False
    yield "appended-garbage", raw + b"\0" * 16, False
    for length in [0, 1, 2, n - 9, n - 7, n, len(raw), 2**32, 2**63, 2**64 - 1]:
        yield f"header-length={length}", struct.pack("<Q", length) + raw[8:], False


def header_cases(header: dict, data: bytes):
    name = "layers.1.weight"  # (8, 3) float32 at offsets [88, 184]
    raw_headers = {"invalid-json": b"{\"a\": ", "json-list": b"[]", "json-number": b"5", "json-string": b"\"x\"",
                   "json-null": b"null", "not-utf8": b"{\"\xff\xfe\": 1}", "empty-object": b"{}",
                   "nul-bytes": b"\0" * 32}
    for key, text in raw_headers.items():
        yield f"header-{key}", pack(text, data)
    for dtype in ["F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "XYZ", "", 5]:
        yield f"dtype={dtype}", pack(with_tensor(header, name, dtype=dtype), data)
    for shape in [[9, 9], [3, 8], [24], [], [0], [-1, 3], [8, 3, 1, 1, 1], [2**40, 2**40], [10**12], ["8", 3],
                  None]:
        yield f"shape={shape}", pack(with_tensor(header, name, shape=shape), data)
    huge = with_tensor(header, name, shape=[10**12], data_offsets=[88, 88 + 4 * 10**12])
    yield "declared-4TB-tensor", pack(huge, data)
    for offsets in [[88, 183], [88, 185], [184, 88], [0, 96], [-4, 92], [88, 10**15], ["a", "b"], [88], None]:
        yield f"offsets={offsets}", pack(with_tensor(header, name, data_offsets=offsets), data)
    yield "extra-header-tensor", pack({**header, "ghost": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, data)
    h = json.loads(json.dumps(header))
    h.pop(name)
    yield "tensor-removed-from-header", pack(h, data)
    for meta in [[], "x", 5, {"format": 5}, {"format": None}]:
        yield f"__metadata__={meta}", pack({**header, "__metadata__": meta}, data)


def metadata_cases(header: dict, data: bytes):
    for fmt in [None, "", "rbmcli-dbn/2", "rbmcli-dbn/0", "rbmcli-state/1", "RBMCLI-DBN/1"]:
        yield f"format={fmt}", pack(with_meta(header, format=fmt), data)
    for model in [None, "", "{", "[]", "null", "5", "{\"layers\": []}", "{\"input_shape\": [1, 4, 4]}",
                  "{\"input_shape\": [1, 4, 4], \"layers\": {}}", "{\"input_shape\": [1, 4, 4], \"layers\": [5]}"]:
        yield f"model={model}", pack(with_meta(header, model=model), data)
    for shape in [[1, 4], [1, 4, 4, 4], [2, 4, 4], [3, 4, 4], [1, 5, 5], [1, 8, 2], [1, 0, 4], [1, -4, 4],
                  ["1", 4, 4], [1.5, 4, 4], [1, 100000, 100000], None]:
        yield f"input_shape={shape}", pack(with_model(header, lambda m, s=shape: {**m, "input_shape": s}), data)
    specs = [("hidden", 4), ("hidden", 3), ("hidden", 0), ("hidden", -2), ("hidden", 10**9), ("hidden", 300_000_000),
             ("hidden", "2"), ("hidden", 2.5), ("hidden", None), ("kind", "lstm"), ("kind", "dense"), ("kind", None),
             ("kernel", 0), ("kernel", -1), ("kernel", 99), ("kernel", 3), ("stride", 0), ("stride", -2),
             ("padding", -1), ("padding", 7), ("visible_shape", [1, 4]), ("visible_shape", [1, 5, 5]),
             ("visible_shape", [16]), ("visible_shape", 16), ("units.n", 0), ("units.n", -3), ("units.n", 2.5),
             ("units.n", "255"), ("units.activation", "tanh"), ("units.activation", None), ("units.k", 0),
             ("units.k", -1.0), ("units.k", float("nan")), ("units.k", float("inf")), ("units.k", "x"),
             ("units.extra", 1), ("hidden_units", None), ("visible_units", 255), ("kind", KeyError),
             ("hidden", KeyError), ("foo", "bar")]
    for key, value in specs:
        yield f"layer0.{key}={value}", pack(with_model(header, layer_edit(0, key, value)), data)
    for key, value in [("hidden", 4), ("visible_shape", [7]), ("units.n", 0), ("kind", "conv")]:
        yield f"layer1.{key}={value}", pack(with_model(header, layer_edit(1, key, value)), data)
    yield "layers-swapped", pack(with_model(header, lambda m: {**m, "layers": m["layers"][::-1]}), data)
    yield "layer-duplicated", pack(with_model(header, lambda m: {**m, "layers": m["layers"] * 2}), data)
    for config in ["{", "[]", "5", "null"]:
        yield f"config={config}", pack(with_meta(header, config=config), data)


def tensor_cases(tensors: dict, meta: dict, tmp_path):
    """Files written by safetensors itself (valid containers) whose tensors are wrong."""
    def variant(name, change):
        t = {k: v.clone() for k, v in tensors.items()}
        change(t)
        p = tmp_path / f"t-{name}.safetensors"
        save_file(t, p, metadata=meta)
        return name, p.read_bytes()

    w = "layers.1.weight"
    yield variant("missing", lambda t: t.pop(w)), False
    yield variant("all-missing", lambda t: [t.pop(k) for k in list(t) if k != w]), False
    yield variant("extra", lambda t: t.__setitem__("layers.2.weight", torch.zeros(3, 3))), False
    yield variant("renamed", lambda t: t.__setitem__("layers.1.W", t.pop(w))), False
    yield variant("transposed", lambda t: t.__setitem__(w, t[w].t().contiguous())), False
    yield variant("int32", lambda t: t.__setitem__(w, t[w].to(torch.int32))), False
    yield variant("bool", lambda t: t.__setitem__(w, t[w] > 0)), False
    for value in [float("nan"), float("inf"), float("-inf")]:
        yield variant(f"{value}-weight", lambda t, v=value: t[w].__setitem__((0, 0), v)), False
        yield variant(f"{value}-bias", lambda t, v=value: t["layers.0.visible_bias"].fill_(v)), False
    yield variant("float16", lambda t: t.__setitem__(w, t[w].half())), True  # a valid model in half precision
    yield variant("float64", lambda t: t.__setitem__(w, t[w].double())), True
    yield variant("huge-finite", lambda t: t[w].fill_(3e38)), True  # finite: loads, samples saturate


@pytest.fixture
def largest_allocation(monkeypatch):
    """The most elements any torch.randn/rand/zeros/ones/empty/full call asked for while the test
    ran (a list of one int): where a model is built from a file, it is built by these."""
    seen = [0]
    for name in ("randn", "rand", "zeros", "ones", "empty", "full"):
        def spy(*args, _real=getattr(torch, name), **kwargs):
            shape = args[0] if args and isinstance(args[0], (tuple, list, torch.Size)) else args
            if name != "full" or shape is not args:
                try:
                    seen[0] = max(seen[0], math.prod(int(x) for x in shape))
                except (TypeError, ValueError):
                    pass
            return _real(*args, **kwargs)
        monkeypatch.setattr(torch, name, spy)
    return seen


def sample(path, out):
    return runner.invoke(app, ["sample", str(path), "-o", str(out), "-n", "2", "--steps", "1", "--device", "cpu"])


def check(r, name, may_load) -> str:
    """'refused' (exit 1, one Error line) or 'accepted' (exit 0, allowed for this case)."""
    assert r.exception is None or isinstance(r.exception, SystemExit), (name, repr(r.exception))
    assert "Traceback" not in r.output, (name, r.output)
    if r.exit_code == 0:
        assert may_load, (name, "loaded a broken file")
        return "accepted"
    lines = [line for line in r.output.splitlines() if line.startswith("Error:")]
    assert r.exit_code == 1 and len(lines) == 1, (name, r.exit_code, r.output)
    return "refused"


def test_fuzzed_checkpoints_are_refused_with_one_line(valid, tmp_path, largest_allocation):
    raw, header, data = valid
    tensors, meta = load_model_tensors(tmp_path, raw)
    cases = list(byte_cases(raw, header, data))
    cases += [(name, b, False) for name, b in header_cases(header, data)]
    cases += [(name, b, False) for name, b in metadata_cases(header, data)]
    cases += [(name, b, ok) for (name, b), ok in tensor_cases(tensors, meta, tmp_path)]
    assert len({name for name, _, _ in cases}) == len(cases) >= 250
    outcomes = {}
    for i, (name, content, may_load) in enumerate(cases):
        path = tmp_path / f"case{i}.safetensors"
        path.write_bytes(content)
        outcome = check(sample(path, tmp_path / f"case{i}.png"), name, may_load)
        outcomes.setdefault(outcome, []).append(name)
        if outcome == "accepted":
            dbn, _ = load_model(path)  # what loads is a complete model with finite parameters
            assert all(torch.isfinite(p).all() for p in dbn.parameters()), name
    assert largest_allocation[0] < 10**7, largest_allocation  # the declared 4 TB / 10^9-unit models: refused before allocating
    print({k: len(v) for k, v in outcomes.items()}, outcomes.get("accepted"))
    assert len(outcomes["refused"]) > 200
    assert not any(n.startswith(("truncate", "header-length", "dtype", "shape", "offsets", "format", "model",
                                 "input_shape", "layer0.hidden", "layer0.units.n=0"))
                   for n in outcomes.get("accepted", [])), outcomes.get("accepted")


def load_model_tensors(tmp_path, raw):
    p = tmp_path / "valid.safetensors"
    p.write_bytes(raw)
    from rbmcli.train.checkpoint import read_safetensors

    return read_safetensors(p)


def test_valid_checkpoint_samples(valid, tmp_path):
    path = tmp_path / "m.safetensors"
    path.write_bytes(valid[0])
    r = sample(path, tmp_path / "s.png")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "s.png").size[0] > 4


def test_huge_declared_model_is_refused_before_allocating(valid, tmp_path, largest_allocation):
    """A layer spec declaring 10^9 hidden units (a 16 GB weight) with the small tensors: refused
    from the header alone, before any tensor of the model's size is asked for."""
    _, header, data = valid
    path = tmp_path / "huge.safetensors"
    path.write_bytes(pack(with_model(header, layer_edit(1, "hidden", 10**9)), data))
    with pytest.raises(RbmError, match="tensors do not match|shape"):
        load_model(path)
    assert largest_allocation[0] < 10**6, largest_allocation
    good = tmp_path / "valid.safetensors"
    good.write_bytes(valid[0])
    load_model(good)
    assert largest_allocation[0] > 0  # the spy sees a model being built


# --- images for `rbm reconstruct` ------------------------------------------------------------------

def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width × height gray pixels (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        png_chunk(b"IEND", b"")


def image_cases(tmp_path):
    """(name, path, may_load)."""
    good = tmp_path / "good.png"
    Image.fromarray((torch.arange(64).reshape(8, 8) * 4).to(torch.uint8).numpy()).save(good)
    png = good.read_bytes()
    Image.open(good).convert("RGB").save(tmp_path / "good.jpg", quality=90)
    jpg = (tmp_path / "good.jpg").read_bytes()
    files = {"zero-byte.png": b"", "text.png": b"hello, not an image\n", "gif-header-only.gif": b"GIF89a",
             "png-as.txt": png, "jpeg-as.png": jpg, "bomb-100000x100000.png": png_declaring(100000, 100000),
             "bomb-20000x20000.png": png_declaring(20000, 20000), "bomb-10000x10000.png": png_declaring(10000, 10000),
             "jpeg-half.jpg": jpg[: len(jpg) // 2], "jpeg-header.jpg": jpg[:20], "png-signature.png": png[:8]}
    rng = random.Random(1)
    files.update({f"random{i}.{ext}": rng.randbytes(rng.randrange(1, 4000))
                  for i, ext in enumerate(["png", "jpg", "bmp", "gif", "webp", "tiff"])})
    files.update({f"png-cut{cut}.png": png[:cut] for cut in [12, 16, 29, 33, 40, 50, len(png) // 2, len(png) - 13]})
    files.update({f"png-flip{pos}.png": bytes(b ^ (1 if i == pos else 0) for i, b in enumerate(png))
                  for pos in [1, 12, 20, 30, 40, len(png) - 20]})
    loadable = {"png-as.txt", "jpeg-as.png", "png-cut%d.png" % (len(png) - 13)}  # Pillow reads content, not names
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        yield name, tmp_path / name, name in loadable or name.startswith("png-flip")  # a flip may hit ancillary bytes
    (tmp_path / "empty-folder").mkdir()
    yield "empty-folder", tmp_path / "empty-folder", False
    yield "missing.png", tmp_path / "missing.png", False


def test_damaged_images_for_reconstruct_are_refused(valid, tmp_path):
    ckpt = tmp_path / "m.safetensors"
    ckpt.write_bytes(valid[0])
    outcomes = {}
    for i, (name, path, may_load) in enumerate(image_cases(tmp_path)):
        r = runner.invoke(app, ["reconstruct", str(ckpt), str(path), "-o", str(tmp_path / f"r{i}.png"),
                                "--device", "cpu"])
        outcome = check(r, name, may_load)
        outcomes.setdefault(outcome, []).append(name)
    print({k: len(v) for k, v in outcomes.items()}, outcomes.get("accepted"))
    assert {n for n in outcomes["refused"] if n.startswith("bomb")} == {"bomb-100000x100000.png",
                                                                         "bomb-20000x20000.png",
                                                                         "bomb-10000x10000.png"}
    assert len(outcomes["refused"]) >= 25


def test_folder_dataset_skips_corrupt_files_and_errors_when_none_left(tmp_path):
    good = Image.fromarray((torch.arange(64).reshape(8, 8) * 4).to(torch.uint8).numpy())
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(3):
        good.save(folder / f"good{i}.png")
    png = (folder / "good0.png").read_bytes()
    bad = {"empty.png": b"", "cut.png": png[:40], "text.jpg": b"not a jpeg", "bomb.png": png_declaring(20000, 20000)}
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    ds = load_dataset("folder", data_dir=folder)
    assert len(ds) == 3 and ds.skipped == 4
    for i in range(3):
        (folder / f"good{i}.png").unlink()
    with pytest.raises(RbmError, match="No readable images"):
        load_dataset("folder", data_dir=folder)
    r = runner.invoke(app, ["train", "--dataset", "folder", "--data-dir", str(folder), "--arch", "tiny", "-q",
                            "--device", "cpu", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and r.output.count("Error:") == 1 and "No readable images" in r.output, r.output
    assert not (tmp_path / "run").exists()
