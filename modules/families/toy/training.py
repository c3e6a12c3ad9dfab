"""Tasks of the toy family: automatic optimisation (regression) and manual optimisation with two
optimizers (a GAN whose generator learns a 1-D Gaussian)."""
import torch

from modules.engine.task import Task, check_finite
from modules.losses.gan import gan_critic_loss, gan_generator_loss


class RegressionTask(Task):
    def loss(self, model, batch):
        pred = model(batch["x"]).squeeze(-1)
        loss = torch.mean((pred - batch["y"]) ** 2)
        return loss, {}

    def validate(self, model, batch):
        pred = model(batch["x"]).squeeze(-1)
        err = pred - batch["y"]
        return {"loss": float(torch.mean(err ** 2)), "mae": float(torch.mean(err.abs()))}


class GanTask(Task):
    """Every iteration updates the critic (binary cross-entropy, real vs generated); every
    `critic_steps`-th also updates the generator (non-saturating loss), each with its own optimizer."""

    def parameter_groups(self, model):
        return {"generator": list(model.generator.parameters()), "critic": list(model.critic.parameters())}

    def training_step(self, model, batch, optim, step):
        real, noise = batch["real"], batch["noise"]
        fake = model.generator(noise)
        optim.zero_grad("critic")
        loss = gan_critic_loss(model.critic(real), model.critic(fake.detach()))
        check_finite(loss, step)
        optim.backward(loss)
        optim.step("critic")
        logs = {"critic_loss": float(loss.detach())}
        if (step + 1) % self.cfg["critic_steps"] == 0:
            optim.zero_grad("generator")
            generator_loss = gan_generator_loss(model.critic(model.generator(noise)))
            optim.backward(generator_loss)
            optim.step("generator")
            logs["generator_loss"] = float(generator_loss.detach())
        return loss.detach(), logs

    def validate(self, model, batch):
        """Distance of the generated distribution to the real one: |mean error|, |std error| and the 1-D
        Wasserstein-1 distance between sorted samples (the batch is large enough for sorting to estimate it)."""
        fake = model.generator(batch["noise"]).squeeze(-1)
        real = batch["real"].squeeze(-1)
        w1 = (fake.sort().values - real.sort().values).abs().mean()
        return {"loss": float(w1), "mean_error": float((fake.mean() - real.mean()).abs()),
                "std_error": float((fake.std() - real.std()).abs())}
