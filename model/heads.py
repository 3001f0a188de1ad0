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


class PackedClassifier(nn.Module):
    """A MultiHeadClassifier run on packed rows: several inputs per row, each attending and pooled alone.

    Inputs come from `stancekit.serve.batching.pack_batch`: `segment_ids` numbers the inputs
    1..S across the batch (0 marks padding), `position_ids` restart at 0 for each input and
    `segment_lengths` holds each input's token count. Logits come back one row per input,
    in segment order. Encoders that take no `position_ids`, or offset them (RoBERTa), do not
    score as padded rows would; the engine compares both on a check batch before packing.
    """

    def __init__(self, model: MultiHeadClassifier):
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor,
        segment_ids: torch.Tensor, segment_lengths: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Logits per head, each of shape (segments, n_labels)."""
        dtype = self.model.encoder.get_input_embeddings().weight.dtype
        # A 4-D additive mask is used as given: block-diagonal, so no token sees another input;
        # padding attends to padding only, which keeps its softmax finite.
        same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
        mask = torch.zeros(same.shape, dtype=dtype).masked_fill(~same, torch.finfo(dtype).min)
        hidden = self.model.encoder(
            input_ids=input_ids, attention_mask=mask, token_type_ids=token_type_ids, position_ids=position_ids
        ).last_hidden_state
        flat = hidden.reshape(-1, hidden.shape[-1]).float()  # pool in fp32: bf16 sums of 100+ tokens lose digits
        segments = segment_ids.reshape(-1)
        if self.model.pooling == "cls":
            flat = flat * (position_ids.reshape(-1, 1) == 0)
            divisor = torch.ones_like(segment_lengths, dtype=torch.float32)
        else:
            divisor = segment_lengths.float()
        sums = flat.new_zeros((segment_lengths.shape[0] + 1, flat.shape[1])).index_add_(0, segments, flat)
        pooled = (sums[1:] / divisor[:, None]).to(dtype)
        return {name: head(pooled) for name, head in self.model.heads.items()}
