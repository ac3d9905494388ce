import pytest
import torch

from models.hardware import device_name, peak_flops


@pytest.mark.parametrize(
    "name, bf16",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-80GB", 312e12),
        ("NVIDIA L40S", 362e12),
        ("NVIDIA L4", 121e12),
    ],
)
def test_the_peak_is_looked_up_by_device_name(name, bf16):
    assert peak_flops(name, "bf16") == bf16
    assert peak_flops(name, "fp32") < bf16 / 3  # plain fp32 runs without tensor cores


def test_an_unknown_device_has_no_peak_unless_the_config_sets_one():
    assert peak_flops("Intel(R) Xeon(R) Processor", "fp32") is None
    assert peak_flops("Intel(R) Xeon(R) Processor", "fp32", override=2e12) == 2e12
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16", override=5e14) == 5e14  # the config wins over the table


def test_a_cpu_is_named_by_its_model():
    assert device_name(torch.device("cpu")) not in ("", "cuda")
