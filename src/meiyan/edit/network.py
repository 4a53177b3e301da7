"""SC-FEGAN's generator and discriminator in PyTorch (training, conversion and export only).

After Y. Jo and J. Park, "SC-FEGAN: Face Editing Generative Adversarial Network with User's Sketch
and Color", ICCV 2019 (arXiv 1902.06838), as its official TensorFlow code builds them:

- the generator is a U-Net of gated convolutions (Yu et al., "Free-Form Image Inpainting with
  Gated Convolution", ICCV 2019). Input: 9 channels, the photo with the hole erased (RGB in
  [-1, 1], 0 in the hole), sketch (0/1), colour (RGB in [-1, 1]), mask (0/1) and noise, the last
  three multiplied by the mask. Encoder: 7 stride-2 gated convolutions (7x7/64 without LRN,
  5x5/128, 5x5/256, 3x3/512 four times); 4 dilated gated 3x3/512 (rates 2, 4, 8, 16); decoder:
  7 gated 5x5 stride-2 transposed convolutions, each followed by a skip concatenation and a gated
  3x3 convolution (512, 512, 512, 256, 128, 64, 3); the last one sees the raw input too, has
  neither LRN nor activation, and is followed by tanh.
- a gated convolution is ``lrelu(LRN(conv(x))) * sigmoid(conv_g(x))``, LRN being TensorFlow's
  ``tf.nn.lrn(x, bias=5e-5)`` (radius 5, alpha 1, beta 0.5);
- a gated transposed convolution, as in the official code, has one kernel ``w`` and bias
  ``biases1``: ``y = lrelu(deconv(x)); y * sigmoid(y)`` (the checkpoint's ``biases2`` is unused;
  there is no LRN there);
- TensorFlow "SAME" padding exactly: stride-2 convolutions pad one pixel more at the end than at
  the start, transposed convolutions are cropped likewise.

Height and width must be multiples of 128 (seven halvings, each of an even size).
"""

from __future__ import annotations

try:
    import torch
    from torch import nn
    from torch.nn import functional
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "meiyan.edit.network needs PyTorch; install it with `pip install meiyan[train]` "
        "(inference uses the ONNX model and needs no torch)"
    ) from e

CNUM = 64
IN_CHANNELS = 9
MULTIPLE = 128
ENCODER = ((1, 7, False), (2, 5, True), (4, 5, True), (8, 3, True), (8, 3, True), (8, 3, True),
           (8, 3, True))  # (channels / 64, kernel, LRN) of gconv1_ds..gconv7_ds
DILATIONS = (2, 4, 8, 16)
DECODER = (8, 8, 8, 4, 2, 1)  # channels / 64 of deconv1..6 and gconv8..13; deconv7 gives 3
LEAK = 0.2  # tf.nn.leaky_relu's default


def scaled(channels: int, width: float) -> int:
    """``channels`` scaled by ``width``, at least 1."""
    return max(1, round(channels * width))


def same_padding(kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow "SAME" padding ``(before, after)`` of an input size divisible by ``stride``."""
    total = max((kernel - 1) * dilation + 1 - stride, 0)
    return total // 2, total - total // 2


def tf_lrn() -> nn.LocalResponseNorm:
    """``tf.nn.lrn(x, bias=5e-5)``: ``x / (5e-5 + sum of x^2 over 11 channels) ** 0.5``.

    PyTorch divides ``alpha`` by the window size, so TensorFlow's alpha 1 is 11 here.
    """
    return nn.LocalResponseNorm(11, alpha=11.0, beta=0.5, k=5e-5)


class GatedConv2d(nn.Module):
    """Gated convolution ``act(LRN(conv(x))) * sigmoid(conv_g(x))`` with TF "SAME" padding."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1,
                 *, lrn: bool = True, activation: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, dilation=dilation)
        self.gate = nn.Conv2d(c_in, c_out, kernel, stride, dilation=dilation)
        before, after = same_padding(kernel, stride, dilation)
        self.padding = (before, after, before, after)
        self.lrn = tf_lrn() if lrn else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = functional.pad(x, self.padding)
        y = self.conv(x)
        if self.lrn is not None:
            y = self.lrn(y)
        if self.activation:
            y = functional.leaky_relu(y, LEAK)
        return y * torch.sigmoid(self.gate(x))


class GatedDeconv2d(nn.Module):
    """The official gated 5x5 stride-2 transposed convolution: ``y = lrelu(deconv(x))``,
    ``y * sigmoid(y)``, cropped as TensorFlow's ``conv2d_transpose`` with "SAME" padding."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        # SAME pads a stride-2 5x5 convolution by (1, 2): the transpose crops 1 before, 2 after;
        # padding=1 crops 1 on both sides, forward() drops the last row and column.
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 5, stride=2, padding=1)

    def transposed(self, x: torch.Tensor) -> torch.Tensor:
        """The biased transposed convolution alone, cropped to twice the input size."""
        return self.deconv(x)[:, :, :-1, :-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = functional.leaky_relu(self.transposed(x), LEAK)
        return y * torch.sigmoid(y)


def _encoder_names() -> list[str]:
    return [f"gconv{i}_ds" for i in range(1, 8)]


def _dilated_names() -> list[str]:
    return [f"co_conv{i}_dlt" for i in range(1, 5)]


class SCFEGANGenerator(nn.Module):
    """``(N, 9, H, W)`` SC-FEGAN input to ``(N, 3, H, W)`` RGB in [-1, 1] (before compositing).

    ``width`` scales every inner channel count (1.0: 92,884,113 trainable parameters, as the
    official checkpoint). Layers are named as the official TensorFlow variables.
    """

    def __init__(self, width: float = 1.0) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = float(width)
        layers: dict[str, nn.Module] = {}
        c_in, skips = IN_CHANNELS, []
        for name, (mult, kernel, lrn) in zip(_encoder_names(), ENCODER, strict=True):
            c_out = scaled(CNUM * mult, width)
            layers[name] = GatedConv2d(c_in, c_out, kernel, 2, lrn=lrn)
            skips.append(c_out)
            c_in = c_out
        for name, rate in zip(_dilated_names(), DILATIONS, strict=True):
            layers[name] = GatedConv2d(c_in, c_in, 3, dilation=rate)
        for i, (mult, skip) in enumerate(zip(DECODER, reversed(skips[:-1]), strict=True)):
            c_out = scaled(CNUM * mult, width)
            layers[f"deconv{i + 1}"] = GatedDeconv2d(c_in, c_out)
            layers[f"gconv{i + 8}"] = GatedConv2d(skip + c_out, c_out, 3)
            c_in = c_out
        layers["deconv7"] = GatedDeconv2d(c_in, 3)
        layers["gconv14"] = GatedConv2d(IN_CHANNELS + 3, 3, 3, lrn=False, activation=False)
        self.layers = nn.ModuleDict(layers)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output by its official name, the last one after tanh."""
        h, w = x.shape[-2:]
        if not torch.jit.is_tracing() and (h % MULTIPLE or w % MULTIPLE):
            raise ValueError(f"height and width must be multiples of {MULTIPLE}, got {h}x{w}")
        out: dict[str, torch.Tensor] = {}
        y, skips = x, []
        for name in _encoder_names():
            y = out[name] = self.layers[name](y)
            skips.append(y)
        for name in _dilated_names():
            y = out[name] = self.layers[name](y)
        for i, skip in enumerate(reversed(skips[:-1])):
            y = out[f"deconv{i + 1}"] = self.layers[f"deconv{i + 1}"](y)
            y = out[f"gconv{i + 8}"] = self.layers[f"gconv{i + 8}"](torch.cat([skip, y], 1))
        y = out["deconv7"] = self.layers["deconv7"](y)
        out["gconv14"] = torch.tanh(self.layers["gconv14"](torch.cat([x, y], 1)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)["gconv14"]


def composite(generated: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The paper's I_comp: ``generated`` inside the mask, ``image`` outside."""
    return generated * mask + image * (1 - mask)


class SNPatchGAN(nn.Module):
    """SN-PatchGAN discriminator (Yu et al. 2019, as SC-FEGAN uses it): six spectrally normalised
    5x5 stride-2 convolutions (64, 128, 256, 256, 256, 256) with leaky ReLU, on the image, mask,
    sketch and colour (8 channels); every element of the last feature map is one patch score."""

    def __init__(self, width: float = 1.0, in_channels: int = 8) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for mult in (1, 2, 4, 4, 4, 4):
            c_out = scaled(CNUM * mult, width)
            conv = nn.Conv2d(c_in, c_out, 5, stride=2, padding=2)
            layers += [nn.utils.parametrizations.spectral_norm(conv), nn.LeakyReLU(LEAK)]
            c_in = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, sketch: torch.Tensor,
                colour: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, mask, sketch, colour], 1))


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
