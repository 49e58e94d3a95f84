"""The one typed training configuration, echoed at start, saved as config.json and in every
checkpoint's metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from rbmcli.errors import RbmError

BINARIZE = ("none", "threshold", "sample")
LR_DECAYS = ("none", "linear", "cosine")
# The weight scale s of each layer (RBM.scale): fan-in keeps the √fan_in factor everywhere; unit drops it
# from every dense layer; first drops it only from a dense first layer (the one on the data).
WEIGHT_SCALES = ("fan-in", "unit", "first")
VISIBLE_BIAS_INITS = ("data", "zero")

# Two training recipes; an option given explicitly overrides its recipe's value.
RECIPES = {
    # Generates varied samples (docs/theory.md, "Why the paper's recipe does not generate"): the
    # top RBM's hidden units are binary, so its Gibbs chain is noisy enough to move between
    # modes, and it learns from persistent chains with a decaying rate. A dense first layer is centered
    # and its weights move without the fan-in brake (docs/theory.md, "Parametrisation").
    "generate": {"negatives": "pcd", "lower_negatives": "meanfield", "lr": 0.005, "lr_decay": "linear", "epochs": 10,
                 "binary_top": True, "center": True, "center_data": True, "weight_scale": "first"},
    # The paper's: mean-field reconstructions, Adam at 0.03, every hidden layer the same units.
    "paper": {"negatives": "meanfield", "lr": 0.03, "lr_decay": "none", "epochs": 5, "binary_top": False, "center": False,
              "center_data": False, "weight_scale": "fan-in"},
}


@dataclass(kw_only=True)
class TrainConfig:
    dataset: str = "mnist"  # mnist, fashion-mnist, colored-mnist, cifar10, caltech101, celeba, emoji, folder
    data_dir: str | None = None  # where the dataset lies (torchvision layout); mnist needs none
    size: int | None = None  # center crop + resize to size×size (None: the dataset's own size)
    arch: str = "small"  # a preset name or a spec string such as "conv:64,conv:128,dense:500"
    visible_units: int = 255  # N of the data layer: pixels 0..255 map onto 0..N
    hidden_units: int = 255  # N of every hidden layer
    k: float | None = None  # scale inside g; None: 1 for N = 1, 4/N for sigmoid, 1/N for relu
    activation: str = "sigmoid"  # unit activation g: sigmoid (paper) or relu (capped NReLU)
    binarize: str = "none"  # N_v = 1 only: none (intensities as probabilities), threshold, sample
    recipe: str = "generate"  # generate or paper: the defaults of the fields marked "recipe" (RECIPES)
    binary_top: bool | None = None  # recipe: the top layer's hidden units are binary (N = 1) unless --arch gives @N
    center: bool | None = None  # recipe: dense layers above the first see their input minus its running mean (centered energy; generate yes, paper no)
    center_data: bool | None = None  # recipe: a dense first layer is centered too (its input: the data; generate yes, paper no)
    center_conv: bool = False  # conv layers are centered too (one offset per channel, under --center/--center-data), and move without the fan-in factor of their weight scale
    weight_scale: str | None = None  # recipe: fan-in (paper), unit or first (generate): s = √(k_v N_v k_h N_h · fan_in), without fan_in in dense layers (unit) or a dense first layer (first)
    negatives: str | None = None  # recipe: the top layer's negatives: meanfield (paper), cd (CD-k), pcd (persistent chains), pt (persistent parallel tempering) or noise (k steps from fresh noise, sampled with the same k)
    lower_negatives: str | None = None  # the negatives of the layers below the top (recipe generate: meanfield; else as negatives)
    gibbs_steps: int = 1  # k of CD-k / PCD-k / noise
    mode: str = "detached"  # detached (all layers at once, each on its detached input), joint (backprop through the stack), greedy; detached measured best: docs/results.md
    epochs: int | None = None  # recipe: epochs (greedy: per layer)
    batch_size: int = 128  # paper: 128
    lr: float | None = None  # recipe: Adam learning rate (paper: 0.03, betas 0.9/0.999)
    lr_decay: str | None = None  # recipe: none (paper), linear or cosine: lr falls to 0 over the run's optimiser steps
    sparsity: float = 0.0  # λ of the sparsity penalty on each layer's mean hidden activity (0: off, the paper)
    sparsity_target: float = 0.1  # its target activity p, as a fraction of N_h
    weight_decay: float = 0.0  # decoupled (AdamW) decay of the weights, not the biases: w ← w·(1 − lr·λ) per step (0: off, the paper)
    visible_bias_init: str = "data"  # data: each layer's visible mean starts at its input's mean (Hinton's guide §8); zero
    init_std: float = 0.1  # std of the initial natural weights (pre-activation std ≈ 0.1·rms(v/N))
    limit: int | None = None  # use only the first n training images
    device: str = "auto"  # auto (cuda, mps, cpu), cpu, cuda, cuda:i
    seed: int = 0  # seeds every generator: same seed, same weights
    sample_steps: int = 1000  # Gibbs steps for the per-epoch sample grid
    save_every: int = 0  # also save every n optimiser steps (0: at epoch ends only)
    save_minutes: float = 0.0  # also save when this many minutes passed since the last save
    keep: int = 3  # keep the last `keep` per-epoch checkpoints (model-epochNNN.safetensors) and best.safetensors
    precision: str = "fp32"  # fp32 or bf16 (autocast: matmuls/convs in bfloat16, free energies in float32)
    channels_last: bool = False  # conv inputs in channels_last memory format (faster on GPUs)
    compile: bool = False  # torch.compile the layer losses (fuses the unit math; ≈ 30 s compile up front)
    graph: bool = False  # CUDA: capture the whole step (losses, backward, Adam) as a CUDA graph and replay it
    log_every: int = 50  # steps between reads of the losses on the host (progress, finiteness); also before every save
    download: bool = False  # allow torchvision to download the dataset

    def __post_init__(self):
        """Fill the fields left None from the recipe."""
        if self.recipe not in RECIPES:
            raise RbmError(f"--recipe must be one of {tuple(RECIPES)}, got {self.recipe!r}", usage=True)
        for name, value in RECIPES[self.recipe].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.lower_negatives is None:
            self.lower_negatives = self.negatives

    def layer_negatives(self, n_layers: int) -> list[str]:
        """The source of negatives of each of n_layers layers: lower_negatives below, negatives on top."""
        return [self.lower_negatives] * (n_layers - 1) + [self.negatives]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in json.loads(text).items() if k in known}
        data.setdefault("recipe", "paper")  # configs written before recipes existed
        data.setdefault("center", False)  # nor centering
        data.setdefault("center_data", False)
        data.setdefault("weight_scale", "fan-in")
        return cls(**data)

    def validate(self) -> "TrainConfig":
        """Raise RbmError(usage=True) on an invalid value or combination."""
        def need(ok: bool, msg: str):
            if not ok:
                raise RbmError(msg, usage=True)
        need(self.visible_units >= 1 and self.hidden_units >= 1, "units N must be >= 1")
        need(self.k is None or self.k > 0, "k must be > 0")
        need(self.epochs >= 1, "--epochs must be >= 1")
        need(self.batch_size >= 1, "--batch-size must be >= 1")
        # inf, or so large that Adam's step lr/(1-β1^t) ≤ 10·lr overflows float32
        need(0 < self.lr < 1e36, f"--lr {self.lr} is out of range: it must be > 0, and too large at 1e36 or more")
        need(self.lr_decay in LR_DECAYS, f"--lr-decay must be one of {LR_DECAYS}")
        need(self.weight_scale in WEIGHT_SCALES, f"--weight-scale must be one of {WEIGHT_SCALES}")
        need(self.limit is None or self.limit >= 1, "--limit must be >= 1")
        need(self.gibbs_steps >= 1, "--gibbs-steps must be >= 1")
        need(self.binarize in BINARIZE, f"--binarize must be one of {BINARIZE}")
        need(self.binarize == "none" or self.visible_units == 1, "--binarize needs --visible-units 1")
        need(self.size is None or self.size >= 4, "--size must be >= 4")
        need(self.save_every >= 0 and self.save_minutes >= 0, "--save-every/--save-minutes must be >= 0")
        need(self.sparsity >= 0 and 0 < self.sparsity_target < 1,
             "--sparsity must be >= 0 and --sparsity-target strictly between 0 and 1")
        need(0 <= self.weight_decay and self.lr * self.weight_decay < 1,
             "--weight-decay must be >= 0 and lr·weight-decay below 1")
        need(self.keep >= 0, "--keep must be >= 0")
        need(self.visible_bias_init in VISIBLE_BIAS_INITS, f"--visible-bias-init must be one of {VISIBLE_BIAS_INITS}")
        need(self.precision in ("fp32", "bf16"), "--precision must be fp32 or bf16")
        self._check_bounds()
        return self

    def _check_bounds(self) -> None:
        """Upper bounds (and finiteness) of the numbers, each named: none may overflow or
        allocate without limit (rbmcli.options)."""
        from rbmcli.options import MAX_COUNT, MAX_SIDE, MAX_UNITS_N, SEED_MAX, check_float, check_ints

        check_ints({"--seed": (self.seed, 0, SEED_MAX), "--size": (self.size, 4, MAX_SIDE),
                    "--visible-units": (self.visible_units, 1, MAX_UNITS_N),
                    "--hidden-units": (self.hidden_units, 1, MAX_UNITS_N), "--epochs": (self.epochs, 1, MAX_COUNT),
                    "--batch-size": (self.batch_size, 1, MAX_COUNT), "--limit": (self.limit, 1, 10**12),
                    "--gibbs-steps": (self.gibbs_steps, 1, MAX_COUNT),
                    "--sample-steps": (self.sample_steps, 0, MAX_COUNT),
                    "--save-every": (self.save_every, 0, 10**12), "--keep": (self.keep, 0, MAX_COUNT),
                    "--log-every": (self.log_every, 1, MAX_COUNT)})
        check_float("--k", self.k, 0, 1e6, open_low=True)
        check_float("--sparsity", self.sparsity, 0, 1e6)
        check_float("--save-minutes", self.save_minutes, 0, 1e9)
