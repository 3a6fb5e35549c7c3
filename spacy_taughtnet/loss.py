"""The TaughtNet distillation loss (pure thinc).

For student logits z (n_tokens, n_tags), gold tag ids y (-1 = missing) and teacher
distributions q (n_tokens, n_teacher_tags) or None:

    loss = (1 - lambda) * mean_{t: y_t >= 0} CE(softmax(z_t), y_t)
         + lambda * T^2 * mean_t KL(q_t || fold(softmax(z_t / T)))

fold sums the student's probabilities of the columns that map onto the same teacher
column (`columns[s]` is the teacher column of student column s; by default the identity,
so that student and teacher share their columns). The `taughtnet_ner` student predicts
BILUO tags and folds them onto the teachers' BIO columns (B, U -> B; I, L -> I).

Without teacher distributions the loss is the plain cross-entropy over the tokens that
have a gold tag. The gradient is taken with respect to the logits z.
"""
from typing import Optional, Tuple, Union

from thinc.api import registry
from thinc.loss import Loss
from thinc.types import Floats2d, Ints1d
from thinc.util import get_array_module

# (gold ids, teacher distributions) or (gold ids, teacher distributions, columns)
Truths = Union[Tuple[Ints1d, Optional[Floats2d]], Tuple[Ints1d, Optional[Floats2d], Optional[Ints1d]]]


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
        gold, teacher, columns = (*truths, None)[:3]
        xp = get_array_module(guesses)
        n_tokens, n_tags = guesses.shape
        if gold.shape != (n_tokens,):
            raise ValueError(f"gold ids shaped {gold.shape}, expected ({n_tokens},)")
        if teacher is not None:
            if columns is None:
                columns = xp.arange(n_tags)
            if (
                columns.shape != (n_tags,)
                or teacher.ndim != 2
                or teacher.shape[0] != n_tokens
                # every teacher column must receive a student column, and only those exist
                or sorted(set(columns.tolist())) != list(range(teacher.shape[1]))
            ):
                raise ValueError(
                    f"teacher distributions shaped {teacher.shape} do not fit student scores "
                    f"{guesses.shape} with teacher columns {columns.tolist()}"
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
            p_t = xp.exp(_log_softmax(xp, z / temp))
            folded = xp.zeros_like(q)
            for s in range(n_tags):
                folded[:, columns[s]] += p_t[:, s]
            folded = xp.maximum(folded, 1e-30)
            positive = q > 0
            log_ratio = xp.log(xp.where(positive, q, 1.0)) - xp.log(folded)
            kl = float(xp.where(positive, q * log_ratio, 0.0).sum()) / n_tokens
            loss += self.lambda_ * temp * temp * kl
            # d/dz_s = T * p_s * (1 - q_c / P_c) for the teacher column c of s (p - q unfolded)
            ratio = (q / folded)[:, columns]
            grad += p_t * (1.0 - ratio) * (self.lambda_ * temp / n_tokens)
        return grad.astype(guesses.dtype), loss


@registry.losses("spacy-taughtnet.DistillationLoss.v1")
def configure_distillation_loss(*, lambda_: float = 0.99, temperature: float = 1.0) -> DistillationLoss:
    """The TaughtNet loss. lambda_: weight of the soft (teacher) term; temperature: T."""
    return DistillationLoss(lambda_=lambda_, temperature=temperature)
