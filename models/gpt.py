"""A small decoder-only transformer for scaling proxies, in the spirit of nanoGPT's model.py.

Choices (fixed, so that every proxy of a sweep differs only in shape):
- pre-norm blocks with RMSNorm (a weight, no bias), no biases anywhere;
- rotary position embeddings by default (no position parameters), learned ones as an option;
- a GELU MLP of width 4 d_model by default, or SwiGLU of width ~8/3 d_model (same parameters);
- the output projection is tied to the token embedding.

How initialisation, learning rates and multipliers scale with width (`GPTConfig.parameterization`;
the base width is train.lr_ref_width):
- mup (the default): muP for Adam, Tensor Programs V (Yang et al. 2022, Table 3), the tied embedding
  treated as in the mup package's MuSharedReadout. Hidden matrices (inside the blocks): init std
  proportional to 1/sqrt(fan_in) (GPT-2's 0.02 at the base width), Adam LR proportional to 1/width,
  weight decay proportional to width so that LR x decay is width-independent (models/train.py).
  Embedding and norms: init and LR width-independent. Logits multiplied by base_width / d_model.
  Attention scores scaled 1/d_head (times sqrt(8): at head_dim 8, the default, as SDPA's 1/sqrt(d_head)).
- mup_lr: only the hidden-matrix LR proportional to 1/width; otherwise as standard.
- standard: GPT-2 (init std 0.02, one LR for every parameter, 1/sqrt(d_head), no output multiplier).
All three scale the projections into the residual stream by 1/sqrt(2 n_layers) at init (GPT-2).
Non-embedding parameters per layer are 12 d^2 + 2 d, plus d for the final norm:
`models.config.count_parameters` counts them without building the model.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from models.config import GPTConfig, swiglu_hidden

MUP_ATTENTION_HEAD_DIM = 8  # muP's attention scale sqrt(8) / d_head equals 1/sqrt(d_head) at the default head_dim


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2).float() / head_dim)
    angles = torch.outer(torch.arange(seq_len).float(), inv_freq)  # (T, head_dim/2)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    rotated = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return rotated.flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_heads = config.n_heads
        self.rotary = config.positions == "rotary"
        head_dim = config.d_model // config.n_heads
        # None: SDPA's default 1/sqrt(head_dim). muP: 1/head_dim, since q and k become correlated in training.
        self.scale = math.sqrt(MUP_ATTENTION_HEAD_DIM) / head_dim if config.parameterization == "mup" else None
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        if self.rotary:
            q, k = apply_rotary(q, cos[:T], sin[:T]), apply_rotary(k, cos[:T], sin[:T])
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        d = config.d_model
        self.swiglu = config.mlp == "swiglu"
        hidden = swiglu_hidden(d) if self.swiglu else 4 * d
        self.up = nn.Linear(d, 2 * hidden if self.swiglu else hidden, bias=False)
        self.proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.swiglu:
            gate, value = self.up(x).chunk(2, dim=-1)
            return self.proj(F.silu(gate) * value)
        return self.proj(F.gelu(self.up(x)))


class Block(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.norm1 = RMSNorm(config.d_model)
        self.attn = CausalSelfAttention(config)
        self.norm2 = RMSNorm(config.d_model)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor | None, sin: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        assert config.d_model % config.n_heads == 0, "d_model must be divisible by n_heads"
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = (
            nn.Embedding(config.seq_len, config.d_model) if config.positions == "learned" else None
        )
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model)
        if config.positions == "rotary":
            cos, sin = rotary_tables(config.seq_len, config.d_model // config.n_heads)
            self.register_buffer("rotary_cos", cos, persistent=False)
            self.register_buffer("rotary_sin", sin, persistent=False)
        else:
            self.rotary_cos = self.rotary_sin = None
        self.apply(self._init_weights)
        # GPT-2's scaled init of the projections that write into the residual stream.
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layers))
        width_ratio = config.d_model / config.base_width
        if config.parameterization == "mup":
            # Every fan-in is a fixed multiple of d_model, so this makes each std proportional to 1/sqrt(fan_in).
            with torch.no_grad():
                for param in self.hidden_matrices():
                    param.mul_(1 / math.sqrt(width_ratio))
        self.output_multiplier = 1 / width_ratio if config.parameterization == "mup" else 1.0

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def hidden_matrices(self) -> list[nn.Parameter]:
        """The matrices inside the blocks: under muP their init, LR and weight decay scale with width."""
        return [p for p in self.blocks.parameters() if p.dim() == 2]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        x = self.token_embedding(idx)
        if self.position_embedding is not None:
            x = x + self.position_embedding(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x, self.rotary_cos, self.rotary_sin)
        logits = F.linear(self.norm(x), self.token_embedding.weight) * self.output_multiplier
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))
