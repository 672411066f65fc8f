"""Network definitions. Every model has `features` (image -> embedding) and `head` (the last
linear layer, embedding -> logits) and returns (embedding, logits): the Worker's fine-tuned
heads replace `head` over the same embedding."""
import torch
import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """LeNet as in the seed document: (CONV 5x5 -> ReLU -> POOL) x2 -> FC 500 -> ReLU -> FC."""

    embedding_size = 500

    def __init__(self, channels: int = 1, classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 20, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(20, 50, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Flatten(),
            nn.Linear(50 * 4 * 4, self.embedding_size),
            nn.ReLU(),
        )
        self.head = nn.Linear(self.embedding_size, classes)

    def forward(self, x: torch.Tensor):
        embedding = self.features(x)
        return embedding, self.head(embedding)


def conv_bn(c_in: int, c_out: int, batch_norm: bool = True, act: type[nn.Module] = nn.ReLU) -> list[nn.Module]:
    if not batch_norm:
        return [nn.Conv2d(c_in, c_out, 3, padding=1), act()]
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), act()]


class VGGish(nn.Module):
    """The VGG-style net of the seed document: conv blocks 64x2, 128x2, 256x3 (3x3, each block
    ending in a 2x2 max-pool), then FC 4096 -> 4096 with dropout 0.5, then FC 10. With
    batch_norm=True every conv is followed by batch normalisation (the manifest says which)."""

    embedding_size = 4096

    def __init__(self, channels: int = 3, classes: int = 10, batch_norm: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for c_out, convs in [(64, 2), (128, 2), (256, 3)]:
            for _ in range(convs):
                layers += conv_bn(c_in, c_out, batch_norm)
                c_in = c_out
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Linear(256 * 4 * 4, 4096), nn.ReLU(), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        )
        self.head = nn.Linear(4096, classes)

    def forward(self, x: torch.Tensor):
        embedding = self.features(x)
        return embedding, self.head(embedding)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand by 4, plus a projected shortcut
    where the shape changes: the block the seed's _make_layer was written for."""

    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.residual = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        # Each block starts as its shortcut (the residual's last norm scales by zero), so the
        # 16-block stack trains stably from the first step at a high learning rate (Goyal et al. 2017).
        nn.init.zeros_(self.residual[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual(x) + self.shortcut(x))


class ResNet50(nn.Module):
    """Bottleneck ResNet-50 (stages of 3/4/6/3 blocks, widths 64-512, 2048-d embedding after
    global average pooling). The stem is adapted to 32x32 inputs: one 3x3 stride-1 conv and no
    max-pool, instead of ImageNet's 7x7 stride-2 conv and pool that would leave 1x1 maps.
    `first_stride=2` halves the first stage's maps (16x16, then 8/4/2): 0.66 GFLOP an image
    instead of 2.60 (scripts/count_flops.py on the exported graphs), for CPU training runs."""

    embedding_size = 2048

    def __init__(self, channels: int = 3, classes: int = 10, first_stride: int = 1):
        super().__init__()
        stages: list[nn.Module] = []
        c_in = 64
        for width, blocks, stride in [(64, 3, first_stride), (128, 4, 2), (256, 6, 2), (512, 3, 2)]:
            for i in range(blocks):
                stages.append(Bottleneck(c_in, width, stride if i == 0 else 1))
                c_in = width * Bottleneck.expansion
        self.features = nn.Sequential(
            *conv_bn(channels, 64), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(self.embedding_size, classes)

    def forward(self, x: torch.Tensor):
        embedding = self.features(x)
        return embedding, self.head(embedding)


def identity_init(conv: nn.Conv2d) -> None:
    """Start a 3x3 conv as the identity on its first input channels (airbench's dirac init): a
    deep plain stack then begins as a shallow one and trains at a high learning rate at once."""
    with torch.no_grad():
        channels = min(conv.in_channels, conv.out_channels)
        nn.init.dirac_(conv.weight[:channels])


class ConvGroup(nn.Module):
    """conv -> BN -> GELU -> 2x2 max-pool, then a second conv -> BN -> GELU on the pooled map,
    added to its input where `residual` (resnet-edge v1 and v2) or in its place (v3: airbench94's
    plain stack, where the identity-initialised conv starts as the shortcut would)."""

    def __init__(self, c_in: int, c_out: int, residual: bool = True):
        super().__init__()
        self.down = nn.Sequential(*conv_bn(c_in, c_out, act=nn.GELU), nn.MaxPool2d(2))
        self.residual = nn.Sequential(*conv_bn(c_out, c_out, act=nn.GELU))  # the name v1/v2's state dicts use
        self.adds_input = residual
        identity_init(self.down[0])
        identity_init(self.residual[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.residual(x) if self.adds_input else self.residual(x)


class ResNetEdge(nn.Module):
    """The edge model: the layout of the fastest public CIFAR-10 speed-runs (a frozen 2x2
    patch-whitening conv, then three conv groups 64-256-256, global max-pool), 2.0 M parameters.
    v1 and v2 add a shortcut around each group's second conv; v3 (`residual=False`) is
    airbench94's plain stack with identity-initialised convs."""

    embedding_size = 256

    def __init__(self, channels: int = 3, classes: int = 10, widths: tuple[int, int, int] = (64, 256, 256), residual: bool = True):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 24, 2), nn.GELU(),
            ConvGroup(24, widths[0], residual), ConvGroup(widths[0], widths[1], residual), ConvGroup(widths[1], widths[2], residual),
            nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(widths[2], classes)

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the 2x2 conv to whiten image patches (eigenvectors of their covariance, scaled by
        1/sqrt(eigenvalue), in both signs) and freeze its weights: a free head start."""
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1] * 4).double()
        mean = patches.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(torch.cov((patches - mean).T))
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).float()
        weight = torch.cat([filters, -filters]).view(24, images.shape[1], 2, 2)
        whiten = self.features[0]
        whiten.weight.copy_(weight)
        whiten.bias.copy_(-(weight.flatten(1) @ mean.float()))
        whiten.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor):
        embedding = self.features(x)
        return embedding, self.head(embedding)


class FlipAveraged(nn.Module):
    """Test-time augmentation inside the graph: the embedding is the mean of the embeddings of
    the image and its mirror image, and the logits are the head applied to it (so the logits are
    the mean of both views' logits too, and a fine-tuned head sees the same embedding)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        embedding = (self.model.features(x) + self.model.features(torch.flip(x, dims=[3]))) / 2
        return embedding, self.model.head(embedding)


class TranslateAveraged(nn.Module):
    """airbench94's full test-time augmentation, as a request with translate_average=true gets it
    (workers/classify/translate-average.ts): half the mirror-averaged embedding of the image, half
    the mean of the mirror-averaged embeddings of the image shifted one pixel up-left and one pixel
    down-right (reflect padding); the logits are the head applied to it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        def mirrored(view: torch.Tensor) -> torch.Tensor:
            return (self.model.features(view) + self.model.features(torch.flip(view, dims=[3]))) / 2

        h, w = x.shape[2], x.shape[3]
        padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
        shifted = (mirrored(padded[:, :, 0:h, 0:w]) + mirrored(padded[:, :, 2:h + 2, 2:w + 2])) / 2
        embedding = (mirrored(x) + shifted) / 2
        return embedding, self.model.head(embedding)


ARCHITECTURES = {"lenet": LeNet, "vggish": VGGish, "resnet50": ResNet50, "resnet-edge": ResNetEdge}


def build(name: str, flip_average: bool = False, **kwargs) -> nn.Module:
    """Build an architecture by the name a manifest records."""
    model = ARCHITECTURES[name](**kwargs)
    return FlipAveraged(model) if flip_average else model


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
