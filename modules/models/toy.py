"""Small models of the toy family (the engine's self-tests): a regression MLP and a 1-D GAN."""
from torch import nn


def mlp(width_in, hidden, depth, width_out, dropout=0.0, leaky=0.0):
    """Linear-ReLU(-Dropout) x depth (LeakyReLU(leaky) when leaky > 0), then Linear to width_out."""
    layers, width = [], width_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(leaky) if leaky else nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = hidden
    layers.append(nn.Linear(width, width_out))
    return nn.Sequential(*layers)


class Gan1d(nn.Module):
    """generator: noise (B,noise_dim) -> samples (B,1); critic: samples (B,1) -> logits (B,1).
    LeakyReLU(0.2) in both, as DCGAN: a ReLU critic's dead units leave flat regions the generator drifts in."""

    def __init__(self, noise_dim=4, hidden=32, depth=2):
        super().__init__()
        self.noise_dim = noise_dim
        self.generator = mlp(noise_dim, hidden, depth, 1, leaky=0.2)
        self.critic = mlp(1, hidden, depth, 1, leaky=0.2)

    def forward(self, noise):
        return self.generator(noise)
