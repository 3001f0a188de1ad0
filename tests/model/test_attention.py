"""Short-sentence attention: the same outputs as the encoder's own attention, padded rows included."""

from __future__ import annotations


def test_short_attention_matches_the_encoders_attention(tiny_encoder_dir):
    import torch
    from transformers import AutoModel

    from stancekit.model.attention import SHORT_ATTENTION, use_short_attention

    reference = AutoModel.from_pretrained(tiny_encoder_dir, attn_implementation="sdpa").eval()
    short = AutoModel.from_pretrained(tiny_encoder_dir, attn_implementation="sdpa").eval()
    assert use_short_attention(short) and short.config._attn_implementation == SHORT_ATTENTION
    ids = torch.randint(1000, 2000, (4, 23))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # padded rows: the padding must not leak into the real tokens
    mask[3, 2:] = 0
    with torch.inference_mode():
        want = reference(input_ids=ids, attention_mask=mask).last_hidden_state
        got = short(input_ids=ids, attention_mask=mask).last_hidden_state
        alone = short(input_ids=ids[1:2, :9], attention_mask=mask[1:2, :9]).last_hidden_state
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], atol=1e-5, rtol=0)
    torch.testing.assert_close(got[1, :9], alone[0], atol=1e-5, rtol=0)


def test_short_attention_in_bf16_matches_float64_maths_and_ignores_padding():
    import torch
    from torch import nn

    from stancekit.model.attention import short_attention

    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 4, 11, 8, generator=gen).bfloat16() for _ in range(3))
    keep = torch.ones(3, 11, dtype=torch.bool)
    keep[0, 5:] = False
    additive = torch.zeros(3, 1, 11, 11).masked_fill(~keep[:, None, None, :], torch.finfo(torch.bfloat16).min)
    module = nn.Module().eval()
    got, _ = short_attention(module, q, k, v, additive.bfloat16(), scaling=8**-0.5)
    scores = (q.double() @ k.double().transpose(2, 3)) * 8**-0.5
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    want = (torch.softmax(scores, -1) @ v.double()).transpose(1, 2)
    assert got.dtype == torch.bfloat16 and got.shape == (3, 11, 4, 8)
    # bf16 scores and outputs keep ~3 significant digits: 0.03 is rounding; a padding leak moves outputs by ~0.5
    torch.testing.assert_close(got.double(), want, atol=0.03, rtol=0)


def test_reduced_precision_engines_use_short_attention_and_fp32_keeps_its_own(tiny_artifact):
    from stancekit.model.artifact import verify_artifact
    from stancekit.model.attention import SHORT_ATTENTION
    from stancekit.serve.engines import TorchEngine

    art = verify_artifact(tiny_artifact)
    bf16, fp32 = TorchEngine(art, "bf16", trace=False), TorchEngine(art, "fp32", trace=False)
    assert bf16.model.encoder.config._attn_implementation == SHORT_ATTENTION
    assert fp32.model.encoder.config._attn_implementation != SHORT_ATTENTION
