import pytest

from models.config import GPTConfig, count_parameters
from models.gpt import GPT
from sweep.plan.flops import flops_per_token


@pytest.mark.parametrize("mlp", ["gelu", "swiglu"])
@pytest.mark.parametrize("positions", ["rotary", "learned"])
@pytest.mark.parametrize("d_model, n_layers", [(16, 1), (48, 3), (64, 2)])
def test_counted_parameters_match_the_built_model(mlp, positions, d_model, n_layers):
    config = GPTConfig(256, 128, d_model, n_layers, d_model // 16, mlp, positions)
    model = GPT(config)
    total = sum(p.numel() for p in model.parameters())
    embedding = model.token_embedding.weight.numel() + (
        model.position_embedding.weight.numel() if model.position_embedding is not None else 0
    )
    assert count_parameters(config) == (total - embedding, total)


def test_flops_per_token_adds_attention_to_6n():
    assert flops_per_token(64, 2, 128, 100_000) == 6 * 100_000 + 6 * 2 * 128 * 64
