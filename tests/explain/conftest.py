"""Models whose evidence is known: a hand-made "brightness" model and a tiny CNN trained on bright squares."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from osteon.data.covariates import CovariateEncoder
from osteon.data.transforms import Preprocessing
from osteon.engine.predictor import Predictor
from osteon.models import ImageModel, create_model
from osteon.tasks import TaskState, build_task

SIZE = 64


class BrightnessBackbone(nn.Module):
    """Features = local brightness: ``avgpool4(relu(x_norm + 2))``, 0 in the letterbox padding (x_norm = -2)."""

    num_features = 1

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            self.conv.bias.fill_(2.0)
        self.pool = nn.AvgPool2d(4)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.conv(x)))

    def forward_head(self, features: torch.Tensor, pre_logits: bool = True) -> torch.Tensor:
        return features.mean(dim=(2, 3))


def make_predictor(model: nn.Module, *, size: int = SIZE, task: str = "classify", names=("0", "1")) -> Predictor:
    positive = "1" if task == "classify" and len(names) == 2 else None
    state = TaskState(
        task,
        "label",
        list(names),
        positive,
        False,
        "ce" if task != "regress" else "l1",
        {"mean": 0.0, "std": 1.0} if task == "regress" else {},
    )
    return Predictor(model.eval(), build_task(state), Preprocessing(image_size=size), CovariateEncoder(), {})


@pytest.fixture
def brightness_predictor() -> Predictor:
    """Class 1's logit is the image's mean brightness: its Grad-CAM is the brightness map."""
    model = ImageModel(BrightnessBackbone(), 2, feature_layer="pool")
    with torch.no_grad():
        model.head.fc.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.head.fc.bias.zero_()
    return make_predictor(model)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return path


def square_phantom(
    rng: np.random.Generator, *, size: int = SIZE, square: int = 12
) -> tuple[np.ndarray, tuple[int, int]]:
    """A dim noisy image with one bright square; returns the image and the square's (y, x) corner."""
    image = rng.normal(0.3, 0.05, (size, size))
    y, x = (int(v) for v in rng.integers(2, size - square - 2, size=2))
    image[y : y + square, x : x + square] = 0.95
    return np.clip(image, 0, 1).astype(np.float32), (y, x)


@pytest.fixture(scope="session")
def square_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, list[tuple[Path, tuple[int, int]]]]:
    """tiny_cnn trained (plain torch, ~50 steps) to tell images with a bright square from images without.

    Returns the predictor and held-out positive test images with their square's corner.
    """
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for i in range(192):
        if i % 2:
            image, _ = square_phantom(rng)
        else:
            image = np.clip(rng.normal(0.3, 0.05, (SIZE, SIZE)), 0, 1).astype(np.float32)
        images.append(image)
        labels.append(i % 2)
    x = (torch.from_numpy(np.stack(images))[:, None] - 0.5) / 0.25
    y = torch.tensor(labels)
    model = create_model("tiny_cnn", 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is faster than two fighting over loaded cores
    try:
        for _ in range(8):
            for batch in torch.randperm(len(x)).split(32):
                optimiser.zero_grad()
                nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
                optimiser.step()
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("squares")
    tests = []
    for i in range(10):
        image, corner = square_phantom(rng)
        tests.append((write_png(out / f"square_{i}.png", image), corner))
    return make_predictor(model), tests
