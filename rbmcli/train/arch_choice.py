"""The architecture `rbm train` picks when --arch is not given: for color images of 32 px or
more, the paper's generation stack (paper-generate's layer types) scaled to the image size;
for gray or smaller images, the `small` preset.

The scaled stack has one conv:C:4:2:1 layer per halving of the side while the side is at least
4 (so the last conv map is 2×2 or 3×3): 4 convs at 32 px, 5 at 64 (exactly paper-generate),
6 at 128; channels 64, 128, then 256; then paper-generate's dense:1000,500,200,100. The image
shape is known without decoding the dataset: the built-in datasets' sides are fixed (or
--size), a folder's is read from its first image.
"""

from __future__ import annotations

from pathlib import Path

from rbmcli.data.datasets import DEFAULT_SIZE
from rbmcli.model.dbn import PRESETS
from rbmcli.train.config import TrainConfig

MIN_CONV_SIDE = 32  # color images at least this large get the conv stack
CONV_CHANNELS = (64, 128)  # the first convs' channels; every later one has 256, as paper-generate
DENSE_TOP = "dense:1000,dense:500,dense:200,dense:100"  # paper-generate's dense layers
# (channels, native side) of each dataset; None: the default --size of the loader
NATIVE = {"mnist": (1, 28), "fashion-mnist": (1, 28), "colored-mnist": (3, 28), "cifar10": (3, 32),
          "caltech101": (3, None), "celeba": (3, None), "emoji": (3, None)}


def generation_stack(side: int) -> str:
    """The conv generation stack for side×side images: one stride-2 conv per halving while the
    side is ≥ 4 (conv 4:2:1 maps s to ⌊s/2⌋), then paper-generate's four dense layers."""
    convs = []
    while side >= 4:
        convs.append(f"conv:{CONV_CHANNELS[len(convs)] if len(convs) < len(CONV_CHANNELS) else 256}")
        side //= 2
    spec = ",".join(convs + [DENSE_TOP])
    named = [name for name, text in PRESETS.items() if text == spec]
    return named[0] if named else spec


def image_shape(cfg: TrainConfig) -> tuple[int, int] | None:
    """(channels, side) of the images cfg trains on, without decoding the dataset: fixed for
    the built-in ones (--size wins), the first image's for a folder; None when unknown."""
    if cfg.dataset in NATIVE:
        channels, side = NATIVE[cfg.dataset]
        return channels, cfg.size or side or DEFAULT_SIZE
    if cfg.dataset != "folder" or not cfg.data_dir:
        return None
    from rbmcli.data.images import IMAGE_EXTENSIONS, to_channels, open_image
    from rbmcli.errors import RbmError

    first = next((p for p in sorted(Path(cfg.data_dir).rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS
                  and p.is_file()), None) if Path(cfg.data_dir).is_dir() else None
    if first is None:
        return None  # the loader says what is wrong
    try:
        image = to_channels(open_image(first), None)
    except RbmError:
        return None  # idem: a folder skips unreadable files
    return (3 if image.mode == "RGB" else 1), cfg.size or min(image.size)


def default_arch(cfg: TrainConfig) -> tuple[str, str]:
    """(arch, why) for a run whose --arch was not given: the line `rbm train` prints first."""
    shape = image_shape(cfg)
    if shape is None or shape[0] != 3 or shape[1] < MIN_CONV_SIDE:
        what = "images of unknown shape" if shape is None else \
            f"{'color' if shape[0] == 3 else 'gray'} {shape[1]}×{shape[1]} images"
        return "small", (f"--arch small (one dense RBM of 500 units): chosen for {what}; "
                         f"color images of {MIN_CONV_SIDE} px or more get a conv stack. --arch overrides.")
    arch = generation_stack(shape[1])
    n_conv = PRESETS.get(arch, arch).count("conv:")
    return arch, (f"--arch {arch}: the paper's generation stack scaled to color {shape[1]}×{shape[1]} images "
                  f"({n_conv} stride-2 convs, then dense 1000, 500, 200, 100). --arch overrides, e.g. --arch small-conv.")
