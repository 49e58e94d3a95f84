"""An independent classifier of image luminance, used to read the class of samples,
occluded and restored digits. It is not the RBM: a one-hidden-layer perceptron

    p(y | x) = softmax(W₂ relu(W₁ x + b₁) + b₂),  x = Y / max(Y)  (D = H·W pixels)

on the ITU-R 601 luminance Y = 0.299 R + 0.587 G + 0.114 B of each image, divided by its
maximum, so that an image's brightness (which on colored-mnist depends on its hue) carries no
class information: on colored-mnist it reads the digit's shape only. Weights start from a
seeded generator (He initialisation) and are fitted by Adam (lr 1e-3, batch 128, EPOCHS
epochs over the training images in seeded random orders): same seed, same classifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rbmcli.errors import RbmError
from rbmcli.train.adam import Adam

HIDDEN = 256
EPOCHS = 3
BATCH = 128
LR = 1e-3
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2


def luminance_features(images: torch.Tensor) -> torch.Tensor:
    """Images (n, C, H, W), uint8 or float in [0, 1] → float32 (n, H·W): luminance (C = 3) or the
    gray channel (C = 1), divided by each image's maximum (an all-black image stays 0)."""
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x.shape[1] == 3:
        x = sum(w * x[:, i] for i, w in enumerate(LUMA))[:, None]
    elif x.shape[1] != 1:
        raise RbmError(f"the classifier reads gray or RGB images, got {x.shape[1]} channels")
    y = x.flatten(1)
    return y / y.max(1, keepdim=True).values.clamp(min=1e-6)


@dataclass
class Classifier:
    w1: torch.Tensor  # (D, HIDDEN)
    b1: torch.Tensor  # (HIDDEN,)
    w2: torch.Tensor  # (HIDDEN, K)
    b2: torch.Tensor  # (K,)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(n, D) features → (n, K) logits."""
        return torch.relu(x @ self.w1 + self.b1) @ self.w2 + self.b2

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 2048) -> torch.Tensor:
        """Images (n, C, H, W) → predicted labels int64 (n,)."""
        x = luminance_features(images)
        if len(x) == 0:
            return torch.zeros(0, dtype=torch.long)
        return torch.cat([self.logits(c).argmax(1) for c in x.split(batch)])

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Percent of images (n, C, H, W) whose predicted label equals labels (n,)."""
        return 100.0 * float((self.predict(images) == labels).double().mean())


def train_classifier(images: torch.Tensor, labels: torch.Tensor, n_classes: int, seed: int = 0,
                     epochs: int = EPOCHS) -> Classifier:
    """Fit the perceptron to images (n, C, H, W) and labels (n,) in 0..n_classes−1."""
    if len(images) == 0 or n_classes < 2 or int(labels.min()) < 0 or int(labels.max()) >= n_classes:
        raise RbmError("the classifier needs labelled training images (labels 0..K−1, K >= 2)")
    x, y = luminance_features(images), labels.long()
    g = torch.Generator().manual_seed(seed)
    d = x.shape[1]
    params = [torch.randn(d, HIDDEN, generator=g) * math.sqrt(2.0 / d), torch.zeros(HIDDEN),
              torch.randn(HIDDEN, n_classes, generator=g) * math.sqrt(2.0 / HIDDEN), torch.zeros(n_classes)]
    for p in params:
        p.requires_grad_(True)
    model = Classifier(*params)
    opt = Adam(params, lr=LR)
    with torch.enable_grad():
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=g).split(BATCH):
                loss = torch.nn.functional.cross_entropy(model.logits(x[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return Classifier(*(p.detach() for p in params))
