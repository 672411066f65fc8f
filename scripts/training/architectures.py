"""Network definitions. Every model returns (embedding, logits): the embedding is the input of
the last linear layer, which the Worker's fine-tuned heads replace."""
import torch
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


ARCHITECTURES = {"lenet": LeNet}


def build(name: str, **kwargs) -> nn.Module:
    """Build an architecture by the name a manifest records."""
    return ARCHITECTURES[name](**kwargs)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
