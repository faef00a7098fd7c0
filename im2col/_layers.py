"""Realistic convolution layers from published architectures, for benchmarks.

The ten named shapes of :mod:`im2col.bench` were chosen to show one effect each. A speed-up has to
hold on the layers people actually train, so this module lists such layers, each from a published
architecture, with the batch size a 2-core CPU run can afford. Every layer knows its output size, its
FLOP count, and how to call itself through :mod:`im2col` and through :mod:`torch.nn.functional`, so a
benchmark times both on the same inputs.

>>> from im2col._layers import REALISTIC
>>> len(REALISTIC) >= 16
True
>>> REALISTIC["cifar_res16"].label
'128×16×32×32, 16 3×3 p1'
>>> REALISTIC["cifar_res16"].out
(32, 32)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._geometry import out_sizes, transposed_size

__all__ = ["Layer", "REALISTIC"]


@dataclass(frozen=True)
class Layer:
    """One convolution layer: input (N, C, *spatial), K kernels of ``kernel`` size.

    ``padding`` is one (symmetric) amount per spatial axis. With ``transposed`` the layer is a
    transposed convolution of an (N, C, *spatial) input to K channels; its weight is
    (C, K/groups, *kernel), as in torch.
    """

    name: str
    source: str
    N: int
    C: int
    spatial: tuple[int, ...]
    K: int
    kernel: tuple[int, ...]
    stride: int = 1
    padding: tuple[int, ...] | int = 0
    dilation: int = 1
    groups: int = 1
    transposed: bool = False

    @property
    def dims(self) -> int:
        return len(self.spatial)

    @property
    def pads(self) -> tuple[int, ...]:
        p = self.padding
        return (p,) * self.dims if isinstance(p, int) else tuple(p)

    @property
    def out(self) -> tuple[int, ...]:
        """The output's spatial sizes (the library's own formulas, im2col/_geometry.py)."""
        s, d = (self.stride,) * self.dims, (self.dilation,) * self.dims
        if self.transposed:
            return transposed_size(self.op_name, self.spatial, self.kernel, s, self.pads, 0, d)[4]
        return out_sizes(self.op_name, self.spatial, self.kernel, s, tuple((p, p) for p in self.pads), d)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        if self.transposed:
            return (self.C, self.K // self.groups, *self.kernel)
        return (self.K, self.C // self.groups, *self.kernel)

    @property
    def flops(self) -> int:
        """Multiply-adds ×2 of the forward pass (the backward does twice as many)."""
        taps = int(np.prod(self.kernel))
        pixels = int(np.prod(self.spatial if self.transposed else self.out))
        return 2 * self.N * self.K * (self.C // self.groups) * taps * pixels

    @property
    def label(self) -> str:
        s = "×".join(map(str, (self.N, self.C, *self.spatial)))
        s += f", {self.K} " + "×".join(map(str, self.kernel))
        if self.transposed:
            s += " T"
        if self.stride != 1:
            s += f" s{self.stride}"
        if any(self.pads):
            s += " p" + (str(self.pads[0]) if len(set(self.pads)) == 1 else ",".join(map(str, self.pads)))
        if self.dilation != 1:
            s += f" d{self.dilation}"
        if self.groups != 1:
            s += f" g{self.groups}"
        return s

    def inputs(self, seed: int = 0, dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
        """Random (input, weight) arrays of this layer."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.N, self.C, *self.spatial)).astype(dtype)
        w = rng.standard_normal(self.weight_shape).astype(dtype)
        return x, w

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments both ``im2col.convNd`` and ``torch.nn.functional.convNd`` take."""
        return dict(stride=self.stride, padding=self.pads, dilation=self.dilation, groups=self.groups)

    @property
    def op_name(self) -> str:
        """``conv2d``, ``conv_transpose1d``, ...: the same name in im2col and in torch."""
        return f"conv_transpose{self.dims}d" if self.transposed else f"conv{self.dims}d"

    def ours(self) -> Any:
        """The im2col function computing this layer (call it with ``x, w, **self.kwargs()``)."""
        import im2col

        return getattr(im2col, self.op_name)

    def torch(self) -> Any:
        """The torch.nn.functional function computing this layer."""
        import torch.nn.functional as F

        return getattr(F, self.op_name)


def _layers(*layers: Layer) -> dict[str, Layer]:
    return {layer.name: layer for layer in layers}


#: Layers from published architectures (batch sizes scaled for a 2-core machine).
REALISTIC: dict[str, Layer] = _layers(
    # ResNet-20/56 for CIFAR-10 (He et al. 2016, §4.2): 16, 32, 64 channels on 32², 16², 8²
    Layer("cifar_res16", "CIFAR ResNet stage 1", 128, 16, (32, 32), 16, (3, 3), padding=1),
    Layer("cifar_res32", "CIFAR ResNet stage 2", 128, 32, (16, 16), 32, (3, 3), padding=1),
    Layer("cifar_res64", "CIFAR ResNet stage 3", 128, 64, (8, 8), 64, (3, 3), padding=1),
    Layer("cifar_down", "CIFAR ResNet downsampling", 128, 16, (32, 32), 32, (3, 3), stride=2, padding=1),
    Layer("mid32", "small CNN, 32 channels on 16²", 32, 32, (16, 16), 32, (3, 3), padding=1),
    # ResNet-50 (He et al. 2016, table 1) bottleneck layers
    Layer("r50_3x3_s2", "ResNet-50 conv3 3×3", 8, 128, (28, 28), 128, (3, 3), padding=1),
    Layer("r50_3x3_s4", "ResNet-50 conv5 3×3", 8, 512, (7, 7), 512, (3, 3), padding=1),
    Layer("r50_1x1_up", "ResNet-50 conv2 1×1 expand", 8, 64, (56, 56), 256, (1, 1)),
    Layer("r50_1x1_proj", "ResNet-50 projection 1×1 s2", 8, 256, (56, 56), 512, (1, 1), stride=2),
    Layer("r50_3x3_down", "ResNet-50 v1.5 3×3 s2", 8, 128, (56, 56), 128, (3, 3), stride=2, padding=1),
    Layer("r50_batch1", "ResNet-50 conv3 3×3, batch 1", 1, 128, (28, 28), 128, (3, 3), padding=1),
    # MobileNetV2 (Sandler et al. 2018): depthwise 3×3 and pointwise projection
    Layer("mbv2_dw", "MobileNetV2 depthwise 3×3", 8, 144, (56, 56), 144, (3, 3), padding=1, groups=144),
    Layer("mbv2_dw_s2", "MobileNetV2 depthwise 3×3 s2", 8, 96, (112, 112), 96, (3, 3), stride=2, padding=1, groups=96),
    Layer("mbv2_pw", "MobileNetV2 pointwise projection", 8, 144, (56, 56), 24, (1, 1)),
    # ResNeXt-50 32×4d (Xie et al. 2017): grouped 3×3
    Layer("resnext_g32", "ResNeXt-50 grouped 3×3", 8, 128, (56, 56), 128, (3, 3), padding=1, groups=32),
    # DeepLabv3 (Chen et al. 2017): atrous 3×3
    Layer("deeplab_d2", "DeepLab atrous 3×3, rate 2", 2, 256, (32, 32), 256, (3, 3), padding=2, dilation=2),
    # GoogLeNet / Inception (Szegedy et al. 2015, 2016): 5×5 and factorised 1×7
    Layer("incep_5x5", "GoogLeNet 5×5 branch", 8, 32, (28, 28), 64, (5, 5), padding=2),
    Layer("incep_1x7", "Inception-v3 1×7", 8, 128, (17, 17), 128, (1, 7), padding=(0, 3)),
    # 1-D: a convolutional text / sequence layer and a speech layer (Jasper-style wide kernel)
    Layer("text1d", "1-D sequence 3-tap", 32, 128, (128,), 128, (3,), padding=1),
    Layer("speech1d", "1-D speech 11-tap", 2, 128, (4000,), 128, (11,), padding=5),
    # 3-D: C3D video (Tran et al. 2015) and a 3-D U-Net level (Çiçek et al. 2016)
    Layer("video3d", "C3D-style video 3×3×3", 2, 32, (8, 28, 28), 64, (3, 3, 3), padding=1),
    Layer("unet3d", "3-D U-Net 3×3×3", 1, 16, (32, 32, 32), 16, (3, 3, 3), padding=1),
    # DCGAN generator (Radford et al. 2016): transposed 4×4, stride 2 upsampling
    Layer("dcgan_up", "DCGAN transposed 4×4 s2", 16, 256, (8, 8), 128, (4, 4), stride=2, padding=1, transposed=True),
)
