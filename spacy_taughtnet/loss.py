"""The TaughtNet distillation loss (pure thinc).

For student logits z (n_tokens, n_tags), gold tag ids y (-1 = missing) and teacher
distributions q (n_tokens, n_tags) or None:

    loss = (1 - lambda) * mean_{t: y_t >= 0} CE(softmax(z_t), y_t)
         + lambda * T^2 * mean_t KL(q_t || softmax(z_t / T))

Without teacher distributions the loss is the plain cross-entropy over the tokens that
have a gold tag. The gradient is taken with respect to the logits z.
"""
from typing import Optional, Tuple

from thinc.api import registry
from thinc.loss import Loss
from thinc.types import Floats2d, Ints1d
from thinc.util import get_array_module

Truths = Tuple[Ints1d, Optional[Floats2d]]


def _log_softmax(xp, z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))


class DistillationLoss(Loss):
    """(1 - lambda) * masked cross-entropy + lambda * T^2 * KL(teacher || student)."""

    def __init__(self, *, lambda_: float = 0.99, temperature: float = 1.0):
        if not 0.0 <= lambda_ <= 1.0:
            raise ValueError(f"lambda_ must lie in [0, 1], got {lambda_}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.lambda_ = float(lambda_)
        self.temperature = float(temperature)

    def __call__(self, guesses: Floats2d, truths: Truths) -> Tuple[Floats2d, float]:
        return self._compute(guesses, truths)

    def get_grad(self, guesses: Floats2d, truths: Truths) -> Floats2d:
        return self._compute(guesses, truths)[0]

    def get_loss(self, guesses: Floats2d, truths: Truths) -> float:
        return self._compute(guesses, truths)[1]

    def _compute(self, guesses: Floats2d, truths: Truths) -> Tuple[Floats2d, float]:
        gold, teacher = truths
        xp = get_array_module(guesses)
        n_tokens, n_tags = guesses.shape
        if gold.shape != (n_tokens,):
            raise ValueError(f"gold ids shaped {gold.shape}, expected ({n_tokens},)")
        if teacher is not None and teacher.shape != guesses.shape:
            raise ValueError(
                f"teacher distributions shaped {teacher.shape}, student scores {guesses.shape}"
            )
        z = guesses.astype("float64")
        grad = xp.zeros_like(z)
        loss = 0.0
        ce_weight = 1.0 if teacher is None else 1.0 - self.lambda_
        has_gold = xp.flatnonzero(gold >= 0)
        if has_gold.size and ce_weight > 0:
            log_p = _log_softmax(xp, z[has_gold])
            gold_ids = gold[has_gold]
            rows = xp.arange(has_gold.size)
            loss += ce_weight * float(-log_p[rows, gold_ids].sum()) / has_gold.size
            d_ce = xp.exp(log_p)
            d_ce[rows, gold_ids] -= 1.0
            grad[has_gold] += d_ce * (ce_weight / has_gold.size)
        if teacher is not None and self.lambda_ > 0 and n_tokens:
            temp = self.temperature
            q = teacher.astype("float64")
            log_pt = _log_softmax(xp, z / temp)
            q_log_q = xp.where(q > 0, q * xp.log(xp.where(q > 0, q, 1.0)), 0.0)
            kl = float((q_log_q - q * log_pt).sum()) / n_tokens
            loss += self.lambda_ * temp * temp * kl
            grad += (xp.exp(log_pt) - q) * (self.lambda_ * temp / n_tokens)
        return grad.astype(guesses.dtype), loss


@registry.losses("spacy-taughtnet.DistillationLoss.v1")
def configure_distillation_loss(*, lambda_: float = 0.99, temperature: float = 1.0) -> DistillationLoss:
    """The TaughtNet loss. lambda_: weight of the soft (teacher) term; temperature: T."""
    return DistillationLoss(lambda_=lambda_, temperature=temperature)
