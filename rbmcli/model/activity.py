"""Hidden-unit activity: how much of its range each unit uses, and which units are dead or
saturated (the mark of a diverged or collapsed layer)."""

from __future__ import annotations

import torch

DEAD, SATURATED = 0.01, 0.99  # mean activity / N below (above) which a unit is dead (saturated)


@torch.no_grad()
def unit_activity(dbn, v: torch.Tensor) -> list[torch.Tensor]:
    """Per layer, each hidden unit's mean activity over the batch as a fraction of N, (H,) in
    [0, 1] (conv: per channel, also averaged over positions). v: visible values (B, C, H, W)."""
    out, x = [], v
    for layer in dbn.layers:
        x = layer.hidden_mean(layer.flatten_input(x))  # (B, *hidden_shape), in 0..N
        unit_mean = x.flatten(2).mean(2).mean(0) if x.dim() == 4 else x.mean(0)
        out.append((unit_mean / layer.spec.hidden_units.n).float().cpu())
    return out


def activity_fractions(acts: list[torch.Tensor]) -> tuple[dict[str, float], dict[str, float]]:
    """Per layer, the fraction of hidden units whose mean activity / N is below DEAD and above
    SATURATED: ({layer: dead}, {layer: saturated}); acts as `unit_activity` returns."""
    dead = {str(i): float((a < DEAD).float().mean()) for i, a in enumerate(acts)}
    saturated = {str(i): float((a > SATURATED).float().mean()) for i, a in enumerate(acts)}
    return dead, saturated
