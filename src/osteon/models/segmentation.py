"""Segmentation architectures: U-Net family from segmentation_models_pytorch (any timm encoder) and MONAI nets.

``SEGMENTATION_MODELS`` is a registry of its own (the classification ``MODELS`` registry holds backbones that
end in a pooled head; these return a map per pixel). Every entry builds a :class:`SegmentationNetwork`:
``(B, in_chans, H, W) → (B, num_outputs, H, W)`` logits, with ``H`` and ``W`` multiples of ``divisor``.

Encoders (smp architectures only) are smp's own names (``resnet18``, ``efficientnet-b0``, ``mobilenet_v2`` …),
any timm model as ``tu-<name>`` (smp's "timm universal" encoder, e.g. ``tu-hrnet_w18_small``,
``tu-convnext_tiny``), or ``timm:<name>`` (the spelling the classification registry uses, mapped to ``tu-``).
Nothing is downloaded unless ``pretrained="hub"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from osteon.errors import ConfigError, UnknownNameError
from osteon.registry import Registry

__all__ = [
    "DEFAULT_ENCODER",
    "SEGMENTATION_MODELS",
    "SegmentationArchitecture",
    "SegmentationNetwork",
    "create_segmentation_model",
    "list_segmentation_models",
    "resolve_encoder",
]

DEFAULT_ENCODER = "resnet18"


@dataclass(frozen=True)
class SegmentationArchitecture:
    """A registered segmentation architecture.

    Attributes:
        name: Registered name (``unet``, ``unet_plusplus``, ``fpn``, ``deeplabv3plus``, ``monai_unet``, ``segresnet``,
            ``tiny_unet``).
        library: ``"smp"`` or ``"monai"``.
        build: ``(encoder, num_outputs, in_chans, encoder_weights) -> nn.Module`` (``encoder`` is ``None`` for
            architectures without one).
        uses_encoder: Whether ``--encoder`` applies.
        divisor: Input sides must be multiples of it (``None``: the encoder's output stride).
        description: One line for listings.
    """

    name: str
    library: str
    build: Callable[..., nn.Module]
    uses_encoder: bool
    divisor: int | None
    description: str


SEGMENTATION_MODELS: Registry[SegmentationArchitecture] = Registry("segmentation model")


class SegmentationNetwork(nn.Module):
    """A segmentation net with the interface the engine and Grad-CAM use.

    Args:
        net: The library model (smp or MONAI).
        num_outputs: Output channels (classes incl. background for softmax, foreground classes for sigmoid).
        architecture: Registered name.
        encoder: Encoder name (``None`` for MONAI nets).
        divisor: Input sides must be multiples of it.

    Shapes:
        ``x`` ``(B, in_chans, H, W)`` → logits ``(B, num_outputs, H, W)``; covariates are not used.
    """

    def __init__(
        self, net: nn.Module, num_outputs: int, *, architecture: str, encoder: str | None, divisor: int
    ) -> None:
        super().__init__()
        self.net = net
        self.num_outputs = num_outputs
        self.architecture = architecture
        self.encoder_name = encoder
        self.divisor = divisor
        #: Dotted name of the module whose activations Grad-CAM should use (the encoder's output).
        self.feature_layer = "net.encoder" if hasattr(net, "encoder") else "net"

    @property
    def backbone(self) -> nn.Module:
        """The encoder (Lightning's BackboneFinetuning freezes it during ``freeze_backbone_epochs``)."""
        encoder = getattr(self.net, "encoder", None)
        if encoder is None:
            raise ConfigError(
                f"{self.architecture} has no separate encoder to freeze. Fix: use freeze_backbone_epochs=0 "
                "or an smp architecture (unet, fpn ...)."
            )
        return encoder

    def forward(self, x: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-2] % self.divisor or x.shape[-1] % self.divisor:
            raise ConfigError(
                f"{self.architecture} needs input sides that are multiples of {self.divisor}; got "
                f"{tuple(x.shape[-2:])}. Fix: choose --image-size/--patch-size as a multiple of {self.divisor}."
            )
        return self.net(x)


# -- encoders ------------------------------------------------------------------------------------------------
def resolve_encoder(name: str | None) -> str:
    """The smp spelling of an encoder name; raises :class:`UnknownNameError` with close names when unknown.

    Example:
        >>> resolve_encoder("timm:hrnet_w18_small")
        'tu-hrnet_w18_small'
    """
    import segmentation_models_pytorch as smp

    name = (name or DEFAULT_ENCODER).strip()
    if name.lower().startswith("timm:"):
        name = "tu-" + name[len("timm:") :]
    if name.startswith("tu-"):
        import timm

        if not timm.is_model(name[3:]):
            raise UnknownNameError("timm encoder", name[3:], timm.list_models())
        return name
    known = smp.encoders.get_encoder_names()
    if name not in known:
        import timm

        if timm.is_model(name):
            raise ConfigError(
                f"encoder {name!r} is a timm model, not an smp encoder. Fix: pass --encoder tu-{name} "
                "(smp's timm universal encoder)."
            )
        raise UnknownNameError("encoder", name, [*known, "tu-<any timm model>"])
    return name


def _smp_builder(arch: str) -> Callable[..., nn.Module]:
    def build(encoder: str | None, num_outputs: int, in_chans: int, encoder_weights: str | None) -> nn.Module:
        import segmentation_models_pytorch as smp

        return smp.create_model(
            arch, encoder_name=encoder, encoder_weights=encoder_weights, in_channels=in_chans, classes=num_outputs
        )

    return build


def _monai_unet(encoder: str | None, num_outputs: int, in_chans: int, encoder_weights: str | None) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=in_chans,
        out_channels=num_outputs,
        channels=(16, 32, 64, 128, 256),
        strides=(2, 2, 2, 2),
        num_res_units=2,
    )


def _tiny_unet(encoder: str | None, num_outputs: int, in_chans: int, encoder_weights: str | None) -> nn.Module:
    from monai.networks.nets import UNet

    return UNet(
        spatial_dims=2,
        in_channels=in_chans,
        out_channels=num_outputs,
        channels=(8, 16, 32, 64),
        strides=(2, 2, 2),
        num_res_units=1,
        norm="batch",  # learns thin structures in far fewer steps than MONAI's default instance norm
    )


def _segresnet(encoder: str | None, num_outputs: int, in_chans: int, encoder_weights: str | None) -> nn.Module:
    from monai.networks.nets import SegResNet

    return SegResNet(spatial_dims=2, in_channels=in_chans, out_channels=num_outputs, init_filters=16)


for _name, _arch, _text in (
    ("unet", "Unet", "U-Net (Ronneberger 2015) with any smp/timm encoder"),
    ("unet_plusplus", "UnetPlusPlus", "U-Net++ (Zhou 2018): nested dense skip connections"),
    ("fpn", "FPN", "Feature Pyramid Network (Kirillov 2019, panoptic FPN head)"),
    ("deeplabv3plus", "DeepLabV3Plus", "DeepLabV3+ (Chen 2018): atrous spatial pyramid pooling + decoder"),
):
    SEGMENTATION_MODELS.register(_name)(SegmentationArchitecture(_name, "smp", _smp_builder(_arch), True, None, _text))
SEGMENTATION_MODELS.register("monai_unet")(
    SegmentationArchitecture("monai_unet", "monai", _monai_unet, False, 16, "MONAI residual UNet (16-256 channels)")
)
SEGMENTATION_MODELS.register("tiny_unet")(
    SegmentationArchitecture(
        "tiny_unet", "monai", _tiny_unet, False, 8, "MONAI UNet of 8-64 channels (~50 k parameters): demos, tests"
    )
)
SEGMENTATION_MODELS.register("segresnet")(
    SegmentationArchitecture("segresnet", "monai", _segresnet, False, 8, "MONAI SegResNet (Myronenko 2018), 2D")
)


def list_segmentation_models() -> list[str]:
    """Names of the registered segmentation architectures."""
    return SEGMENTATION_MODELS.names()


# -- building ----------------------------------------------------------------------------------------------
def create_segmentation_model(
    name: str,
    num_outputs: int,
    *,
    encoder: str | None = None,
    in_chans: int = 1,
    pretrained: str | None = None,
    dropout: float = 0.0,
) -> SegmentationNetwork:
    """Build a registered segmentation architecture.

    Args:
        name: A name of :data:`SEGMENTATION_MODELS`.
        num_outputs: Output channels.
        encoder: Encoder for smp architectures (default ``resnet18``); must be ``None`` for MONAI nets.
        in_chans: Input channels (1 for radiographs).
        pretrained: ``None`` (random init, nothing downloaded), a local weights file for the encoder (timm,
            torchvision or smp encoder state dict; 3-channel first convolutions are summed to 1 channel),
            ``"hub"`` (smp's ImageNet weights; needs internet), or a pretrain run / ``backbone.pt`` of the
            encoder's architecture (:mod:`osteon.models.pretrained`).
        dropout: Spatial dropout before the segmentation head.

    Raises:
        UnknownNameError: unknown architecture or encoder (lists close names).
        ConfigError: an encoder for an architecture without one, a missing/unusable weights file.

    Example:
        >>> net = create_segmentation_model("unet", 2, encoder="resnet18")
        >>> net(torch.zeros(1, 1, 64, 96)).shape
        torch.Size([1, 2, 64, 96])
    """
    if num_outputs < 1:
        raise ConfigError(f"num_outputs must be ≥ 1, got {num_outputs}.")
    arch = SEGMENTATION_MODELS.get(name)
    if not arch.uses_encoder and encoder is not None:
        raise ConfigError(f"{arch.name} has no encoder option (got encoder={encoder!r}). Fix: drop --encoder.")
    if not arch.uses_encoder and pretrained is not None:
        raise ConfigError(f"{arch.name} has no pretrained weights here. Fix: drop --pretrained.")
    resolved = resolve_encoder(encoder) if arch.uses_encoder else None
    from osteon.models.pretrained import backbone_source, encoder_architecture

    source = backbone_source(pretrained)  # a pretrain run / backbone.pt: checked before anything is built
    what = f"{arch.name} encoder {resolved!r}"
    if source is not None:
        source.check(needs=encoder_architecture(resolved), in_chans=in_chans, what=what, fix=source.encoder_option())
    encoder_weights = "imagenet" if pretrained == "hub" else None
    net = arch.build(resolved, num_outputs, in_chans, encoder_weights)
    if source is not None:
        source.load_into(net.encoder, what=what)
    elif pretrained not in (None, "hub"):
        load_encoder_weights(net, Path(str(pretrained)))
    head = getattr(net, "segmentation_head", None)
    if dropout > 0 and isinstance(head, nn.Module):
        net.segmentation_head = nn.Sequential(nn.Dropout2d(dropout), *head.children())
    divisor = arch.divisor or int(getattr(net.encoder, "output_stride", 32))
    return SegmentationNetwork(net, num_outputs, architecture=arch.name, encoder=resolved, divisor=divisor)


def load_encoder_weights(net: nn.Module, path: Path) -> None:
    """Load a local state dict into ``net.encoder`` (keys matched with or without ``model.``/``encoder.``).

    First-convolution weights with 3 input channels are summed to the encoder's channel count (timm's
    ``adapt_input_conv`` for 1 channel); the head of a classification checkpoint is ignored.

    Raises:
        ConfigError: the file is missing, unreadable, or no tensor in it fits the encoder.
    """
    if not path.is_file():
        raise ConfigError(
            f"pretrained={str(path)!r} is neither 'hub' nor an existing weights file. Fix: pass the path of a "
            ".pth/.safetensors state dict of the encoder (timm, torchvision or smp)."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt file raises many types; say which file
        raise ConfigError(f"{path}: could not be read as a weights file ({type(exc).__name__}: {exc}).") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    encoder = net.encoder
    if not isinstance(encoder, nn.Module):
        raise ConfigError(f"{type(net).__name__} has no encoder to load {path} into.")
    target = encoder.state_dict()
    loaded: dict[str, torch.Tensor | None] = {}
    for key, value in state.items():
        for candidate in (key, key.removeprefix("encoder."), f"model.{key}", key.removeprefix("module.")):
            if candidate in target:
                loaded[candidate] = _adapt(value, target[candidate])
                break
    usable = {k: v for k, v in loaded.items() if v is not None}
    if not usable:
        raise ConfigError(
            f"{path}: none of its {len(state)} tensors fits the {type(encoder).__name__} encoder. "
            "Fix: pass weights of the same encoder architecture."
        )
    encoder.load_state_dict(usable, strict=False)


def _adapt(value: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """``value`` reshaped to ``target``'s shape: equal shapes pass, a 3-channel stem is summed to 1 channel."""
    if value.shape == target.shape:
        return value
    stem = value.ndim == 4 and target.ndim == 4 and target.shape[1] == 1
    if stem and value.shape[0] == target.shape[0] and value.shape[2:] == target.shape[2:]:
        return value.sum(dim=1, keepdim=True)
    return None
