import pytest
import torch

from osteon.models.centernet import CenterNet
from osteon.models.test_time import single_pass

ENCODER = "mobilenetv4_conv_small"


def test_single_pass_predicts_the_flip_test_detector_in_one_pass_and_restores_it() -> None:
    torch.manual_seed(0)
    model = CenterNet(ENCODER, 1, width=16, flip_test=True).eval()
    image = torch.randn(1, 1, 64, 64)
    wrapped = torch.nn.Sequential(model)  # found inside a wrapper as well
    with torch.no_grad(), single_pass(wrapped):
        assert not model.flip_test
        single = model.network(image)
    assert model.flip_test
    model.flip_test = False
    with torch.no_grad():
        torch.testing.assert_close(single, model.network(image))


class _Flipping(torch.nn.Module):
    def __init__(self, flip_test: bool) -> None:
        super().__init__()
        self.flip_test = flip_test


def test_single_pass_switches_any_module_and_restores_it_after_an_error() -> None:
    on, off = _Flipping(True), _Flipping(False)
    model = torch.nn.ModuleList([on, off, torch.nn.Linear(1, 1)])
    with pytest.raises(RuntimeError), single_pass(model):
        assert not on.flip_test
        raise RuntimeError("validation failed")
    assert on.flip_test and not off.flip_test  # restored; one that was off stays off
