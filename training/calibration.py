"""Temperature scaling: one scalar per head, fitted on dev by minimising negative log-likelihood."""

from __future__ import annotations

import numpy as np
import torch

from stancekit.training.data import IGNORE


def fit_temperature(logits: np.ndarray, y: np.ndarray, max_iter: int = 200) -> float:
    """Temperature T > 0 minimising NLL of softmax(logits / T) on rows with a gold label."""
    keep = y != IGNORE
    if keep.sum() < 2:
        return 1.0
    z = torch.tensor(logits[keep], dtype=torch.float64)
    t = torch.tensor(y[keep])
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # optimise log T so T stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(np.clip(log_t.exp().item(), 0.05, 20.0))
