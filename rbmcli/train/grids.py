"""The per-epoch grids of a run, drawn on the training device: 64 samples, how 8 of their
chains evolved, and training images above their reconstructions through each depth.

The 64 grid chains persist across epochs, as persistent contrastive chains do: each epoch
runs `grid_steps` more block-Gibbs steps in the top RBM of the current model from where the
previous epoch left them, then one step whose visible is a mean, and the mean pass down
(the same chain as `rbm sample`). A short epoch so spends little on its picture, and the grid
of a long run still shows chains thousands of steps long. The chains start from noise with
seed + 2 (again after --resume: they are a picture, not training state). A top layer trained
with --negatives noise is drawn as it was trained instead: k steps from fresh noise each epoch.

The reconstruction picture shows what each depth keeps: training images, then their mean pass
up through the first layer and back down, through the first two, ..., through the whole
stack. A stack learns from the bottom up, so early pictures show which layers have learned.
"""

from __future__ import annotations

import torch

from rbmcli.data.batches import to_visible
from rbmcli.data.images import save_png
from rbmcli.model.sampling import gibbs_chain, gibbs_step, to_pixels, top_chain_start

GRID_CHAINS, STRIP_CHAINS, FRAMES = 64, 8, 8
# Gibbs steps of the 64 grid chains per training step of the epoch. A step of 64 chains costs
# about a fifth of a training step of batch 128 of the default job (two products of half the
# rows against six, and no Adam; 0.17–0.22 measured on 2 CPU cores, docs/performance.md): 0.1
# steps per training step cost about 2 % of an epoch, and leave the pictures the rest of 10 %.
GRID_STEPS_PER_STEP = 0.1


def grid_steps(sample_steps: int, steps_per_epoch: int) -> int:
    """Gibbs steps the grid chains advance per epoch: --sample-steps, but at most
    GRID_STEPS_PER_STEP × the epoch's training steps (at least 1)."""
    return max(1, min(sample_steps, int(GRID_STEPS_PER_STEP * steps_per_epoch)))


class EpochGrids:
    """Subscriber of the trainer's events: on each epoch, samples-epochNNN.png, chains.png and
    recon-epochNNN.png in the run folder."""

    RECON_IMAGES = (32, 16)  # training images in the reconstruction picture: one layer, a stack

    def __init__(self, trainer):
        self.dbn, self.folder, self.cfg = trainer.dbn, trainer.folder, trainer.cfg
        self.device, self.shape = trainer.device, trainer.input_shape
        # A top trained with --negatives noise is drawn as it learned: k steps from fresh noise
        # (k − 1 here, then the mean step; at least one for the strip's frame).
        self.fresh = trainer.negatives[-1] == "noise"
        self.steps = (max(trainer.cfg.gibbs_steps - 1, 1) if self.fresh
                      else grid_steps(trainer.cfg.sample_steps, trainer.steps_per_epoch))
        self.data = to_visible(trainer.images[:32].to(self.device), trainer.cfg.visible_units)  # (32, C, H, W)
        self.generator = torch.Generator(device=self.device).manual_seed(trainer.cfg.seed + 2)
        self.chains = None  # (64, *visible_shape of the top RBM), persistent

    def __call__(self, event: dict) -> None:
        if event["kind"] == "epoch" and self.cfg.sample_steps > 0:
            self.write(event["row"]["epoch"])

    def pixels(self, v: torch.Tensor) -> torch.Tensor:
        """Pixel values 0..N_v of top visible states → float (n, C, H, W) in [0, 1] on the CPU."""
        n_v = self.cfg.visible_units
        return (to_pixels(self.dbn, v).reshape(-1, *self.shape) / n_v).clamp(0, 1).cpu()

    @torch.no_grad()
    def advance(self) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the grid chains `steps` further; (grid pixels (64, C, H, W), min(FRAMES, steps)
        frames of the first STRIP_CHAINS chains, each (8, C, H, W))."""
        top = self.dbn.layers[-1]
        if self.chains is None or self.fresh:
            self.chains = top_chain_start(self.dbn, GRID_CHAINS, self.generator, device=self.device)
        frames, done, n_frames = [], 0, min(FRAMES, self.steps)
        for t in range(1, n_frames + 1):  # n_frames segments of about steps/n_frames each
            n = self.steps * t // n_frames - done
            self.chains, done = gibbs_chain(top, self.chains, n, self.generator), done + n
            frames.append(self.pixels(self.chains[:STRIP_CHAINS]))
        last = gibbs_step(top, self.chains, self.generator, mean_visible=True)
        return self.pixels(last), frames

    @torch.no_grad()
    def write(self, epoch: int) -> None:
        grid, frames = self.advance()
        save_png(grid, self.folder.samples_png(epoch))
        strip = torch.stack(frames, 1).flatten(0, 1)  # (8·FRAMES, C, H, W): a row per chain
        save_png(strip, self.folder.chains_png, nrow=len(frames))
        save_png(self.reconstructions(), self.folder.recon_png(epoch), nrow=8)

    def reconstructions(self) -> torch.Tensor:
        """Training images above their reconstruction through each depth 1..L, blocks of rows
        (32 images for one layer, 16 for a stack): ((L + 1)·n, C, H, W) in [0, 1] on the CPU."""
        data = self.data[:self.RECON_IMAGES[len(self.dbn.layers) > 1]]
        rows = [data] + self.dbn.reconstructions(data)
        return (torch.cat(rows) / self.cfg.visible_units).clamp(0, 1).cpu()
