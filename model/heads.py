"""One shared encoder, one linear classification head per task (stance, sentiment, ...)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average the token states where attention_mask is 1 (sentence-transformers pooling)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class MultiHeadClassifier(nn.Module):
    """Shared encoder + pooling + dropout + a linear layer per head; forward returns logits by head.

    Parameters
    ----------
    encoder : PreTrainedModel
        Transformer encoder returning ``last_hidden_state``.
    heads : dict[str, int]
        Number of labels per head name.
    pooling : {"mean", "cls"}
        Sentence vector from token states.
    dropout : float
        Dropout applied to the sentence vector before each head.
    """

    def __init__(self, encoder: PreTrainedModel, heads: dict[str, int], pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        hidden = encoder.config.hidden_size
        self.heads = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in heads.items()})

    def embed(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Pooled sentence vectors, shape (batch, hidden)."""
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**kwargs).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        return mean_pool(hidden, attention_mask)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Logits per head, each of shape (batch, n_labels)."""
        pooled = self.dropout(self.embed(input_ids, attention_mask, token_type_ids))
        return {name: head(pooled) for name, head in self.heads.items()}
