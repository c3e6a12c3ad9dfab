"""GAN losses: the non-saturating GAN of Goodfellow et al. 2014 and the Wasserstein GAN with gradient
penalty (Gulrajani et al. 2017) that genren's critics use. Scores are the critic's raw outputs (logits)."""
import torch
import torch.nn.functional as F


def gan_critic_loss(real_logits, fake_logits):
    """-log D(real) - log(1 - D(fake)), D = sigmoid(logit), averaged (binary cross-entropy)."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def gan_generator_loss(fake_logits):
    """Non-saturating generator loss -log D(fake)."""
    return F.softplus(-fake_logits).mean()


def wgan_critic_loss(real_scores, fake_scores):
    """mean D(fake) - mean D(real): the critic minimises it (maximises the Wasserstein estimate)."""
    return fake_scores.mean() - real_scores.mean()


def wgan_generator_loss(fake_scores):
    """-mean D(fake)."""
    return -fake_scores.mean()


def gradient_penalty(critic, real, fake, mix):
    """mean (||grad_x D(x)||_2 - 1)^2 at x = mix * real + (1 - mix) * fake.

    real, fake: (B, ...) samples; mix: (B, 1...) in [0,1] broadcastable to them. Keeps the graph, so the
    penalty is differentiable w.r.t. the critic's parameters.
    """
    x = (mix * real + (1 - mix) * fake.detach()).requires_grad_(True)
    grad, = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
