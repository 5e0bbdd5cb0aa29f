"""Optimizers (SGD with momentum, Adagrad, Adam) with lazy updates of embedding rows.

Every optimizer takes a :class:`~minirec.nn.base.Module` and reads the parameters that
``module.parameters()`` yields (walked once and kept, see ``Optimizer._parameter_entries``),
so its state is keyed by the parameters' dotted names (``"embedding.weight"``).
One step runs in this order:

1. gather the gradients, coalescing each :class:`~minirec.nn.base.SparseGrad` into unique
   rows with summed values, and raise ``FloatingPointError`` naming the first parameter
   whose gradient contains NaN or infinity, before anything is changed;
2. if ``clip_norm`` is set, scale all gradients by ``clip_norm / total_norm`` when the
   global norm over every dense entry and every sparse row exceeds ``clip_norm``;
3. add the L2 weight decay term ``weight_decay * w`` to each gradient (``g + wd * w``);
4. update each parameter with the rule of the optimizer.

Lazy updates of embedding tables
--------------------------------
An embedding table's gradient is a SparseGrad that holds only the rows looked up in the
batch. The optimizers here change only those rows: the parameter rows, their optimizer
state (momentum buffer, Adagrad accumulator, Adam moments) and the weight decay, which is
applied to the rows in the batch only. Rows absent from the batch keep their values and
their state bit for bit. Adam keeps one step count per row, and a row's bias correction
uses the number of steps in which that row had a gradient. A row seen in 2 of 10 steps is
corrected with ``t = 2``, so its update is the one dense Adam would make on that row's own
history. State arrays of the table's size are allocated once, at the first step in which
the table has a gradient, and later steps work on arrays of the batch's rows only. A step
therefore costs the same whatever the vocabulary size. Dense parameters are updated every
step, as usual.

With ``weight_decay=0``, plain SGD and Adagrad give the same numbers lazily as they would
densely, because a row with a zero gradient changes neither the parameter nor the
accumulator. SGD with momentum and Adam do not: a dense update keeps moving absent rows
with their stored momentum or moments, and dense weight decay shrinks every row.

Other libraries (checked against the PyTorch 2.13 sources): ``torch.optim.Adam`` given the
dense gradient of a table decays the moments of every row at every step, moves every row
whose first moment is non-zero, and with ``weight_decay`` adds ``wd * w`` for every row, so
its step costs time proportional to the table size. ``torch.optim.SparseAdam`` updates the
moments and the parameter only for the rows present in the sparse gradient, but its bias
correction uses one step count per tensor rather than per row, and it takes no weight
decay. ``torch.optim.Adagrad`` accepts sparse gradients and then updates only the present
rows, but raises an error if ``weight_decay`` is combined with sparse gradients.

References: Kingma and Ba, "Adam: A Method for Stochastic Optimization" (2015); Duchi,
Hazan and Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
Optimization" (2011); Zhou et al., "Deep Interest Network for Click-Through Rate
Prediction" (2018) for :class:`MiniBatchAwareL2`.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from .nn.base import Module, SparseGrad
from .nn.functional import set_rows


def _check_number(name: str, value, valid: str, is_valid) -> float:
    """Return ``value`` as a float, raising ValueError with ``valid`` unless it passes."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not (math.isfinite(value) and is_valid(value)):
        raise ValueError(f"{name} must be {valid}, got {value!r}")
    return value


def _check_positive(name: str, value) -> float:
    return _check_number(name, value, "a finite number > 0", lambda v: v > 0)


def _check_non_negative(name: str, value) -> float:
    return _check_number(name, value, "a finite number >= 0", lambda v: v >= 0)


def _check_model(model) -> Module:
    if not isinstance(model, Module):
        raise TypeError(f"model must be a minirec Module, got {type(model).__name__}")
    return model


def _gather_gradients(model: Module, entries=None) -> list[tuple]:
    """Return (name, param, rows, values) per parameter, rows None for dense gradients.

    ``entries`` is the list of (name, param, grad) to read, by default
    ``model.parameters()``. Sparse gradients are coalesced. Raises FloatingPointError
    naming the first parameter whose gradient is not finite, and ValueError for sparse
    rows outside the table.
    """
    gathered = []
    for name, param, grad in (model.parameters() if entries is None else entries):
        if isinstance(grad, SparseGrad):
            rows, values = grad.coalesce()                             # (R,), (R, K)
            if rows.size and (rows[0] < 0 or rows[-1] >= param.shape[0]):
                raise ValueError(
                    f"sparse gradient of {name!r} has rows from {rows[0]} to {rows[-1]}, "
                    f"outside the table's rows 0 to {param.shape[0] - 1}"
                )
        else:
            rows, values = None, grad
        # A finite sum proves every entry finite (NaN or infinity makes the sum non-finite);
        # only a sum that is not finite, which overflow can also cause, needs the full test.
        if not math.isfinite(values.sum()) and not np.all(np.isfinite(values)):
            raise FloatingPointError(
                f"gradient of parameter {name!r} contains NaN or infinity, so no parameter "
                "or gradient was changed. Lower the learning rate or check the loss for "
                "overflow."
            )
        gathered.append((name, param, rows, values))
    return gathered


def _global_norm(values_list) -> float:
    """Return the Euclidean norm over all entries of all arrays, summed in float64."""
    total = 0.0
    for values in values_list:
        total += float(np.sum(np.square(values, dtype=np.float64)))
    return math.sqrt(total)


def clip_grad_norm(model: Module, max_norm: float) -> float:
    """Scale the model's gradients in place so that their global norm is at most ``max_norm``.

    The norm is taken over every dense gradient entry and every coalesced sparse row (a row
    repeated in the batch counts once, with its summed gradient). When the norm exceeds
    ``max_norm`` every gradient is multiplied by ``max_norm / norm``. For example, gradients
    ``(3, 4)`` and ``(12,)`` have norm 13, and clipping to 1.3 gives ``(0.3, 0.4)`` and
    ``(1.2,)``. A SparseGrad is replaced by its coalesced, scaled rows.

    Returns the global norm before clipping.
    """
    _check_model(model)
    max_norm = _check_positive("max_norm", max_norm)
    gathered = _gather_gradients(model)
    total_norm = _global_norm(values for _, _, _, values in gathered)
    if total_norm <= max_norm:
        return total_norm
    scale = max_norm / total_norm
    for module in model.modules():
        for name, grad in module.grads.items():
            if isinstance(grad, SparseGrad):
                rows, values = grad.coalesce()
                grad.zero()
                grad.add(rows, values * scale)
            else:
                grad *= scale
    return total_norm


class Optimizer:
    """Base class that checks, clips and decays the gradients, then applies an update rule.

    Subclasses implement ``_update_dense(state, param, grad)`` and
    ``_update_rows(state, param, rows, grad_rows)``, where ``state`` is the dict kept for
    that parameter's dotted name and ``grad`` already includes clipping and weight decay.

    Attributes
    ----------
    lr : float
        Learning rate; may be changed between steps (a schedule).
    state : dict of str to dict
        Per-parameter optimizer state, keyed by dotted parameter name.
    step_count : int
        Number of completed calls to :meth:`step`.
    """

    def __init__(self, model: Module, lr: float, *, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        self.model = _check_model(model)
        self.lr = _check_positive("lr", lr)
        self.weight_decay = _check_non_negative("weight_decay", weight_decay)
        self.clip_norm = None if clip_norm is None else _check_positive("clip_norm", clip_norm)
        self.state: dict[str, dict] = {}
        self.step_count = 0
        self._entries = None    # cached walk of the model, see _parameter_entries

    def _parameter_entries(self) -> list[tuple]:
        """Return (name, param, grad) for every parameter, walking the model only when needed.

        Walking the module tree at every step costs a measurable share of a small step, so
        the list is kept between steps, together with each parameter's owning module. It
        is rebuilt when any owner's ``params`` or ``grads`` no longer contains the same objects
        (an entry replaced, added or removed). Writing into the arrays in place, as
        ``load_state_dict`` and ``clip_grad_norm`` do, keeps it valid. Modules attached to
        the model after the first step are not seen: create the optimizer after the model
        is complete.
        """
        cached = self._entries
        if cached is not None:
            entries, checks, sizes = cached
            if all(len(module.params) == size for module, size in sizes) and all(
                    module.params.get(key) is param and module.grads.get(key) is grad
                    for module, key, param, grad in checks):
                return entries
        entries, checks, sizes = [], [], {}
        for prefix, module in self.model._named_modules():
            sizes[id(module)] = (module, len(module.params))
            for key, param in module.params.items():
                grad = module.grads[key]
                entries.append((prefix + key, param, grad))
                checks.append((module, key, param, grad))
        self._entries = (entries, checks, list(sizes.values()))
        return entries

    def zero_grad(self) -> None:
        """Reset every gradient of the model to zero."""
        for _, _, grad in self._parameter_entries():
            if isinstance(grad, SparseGrad):
                grad.zero()
            else:
                grad[...] = 0

    def step(self) -> None:
        """Update every parameter from its current gradient, leaving the gradients unchanged."""
        gathered = _gather_gradients(self.model, self._parameter_entries())

        if self.clip_norm is not None:
            total_norm = _global_norm(values for _, _, _, values in gathered)
            if total_norm > self.clip_norm:
                scale = self.clip_norm / total_norm
                gathered = [(name, param, rows, values * scale)
                            for name, param, rows, values in gathered]

        for name, param, rows, values in gathered:
            state = self.state.setdefault(name, {})
            if rows is None:
                grad = values
                if self.weight_decay:
                    grad = grad + self.weight_decay * param
                self._update_dense(state, param, grad)
            elif rows.size:
                grad_rows = values
                if self.weight_decay:
                    grad_rows = grad_rows + self.weight_decay * param[rows]   # (R, K)
                self._update_rows(state, param, rows, grad_rows)
        self.step_count += 1

    def _table_state(self, state: dict, key: str, param: np.ndarray, fill=0.0,
                     dtype=None) -> np.ndarray:
        """Return ``state[key]``, allocating it once with the table's shape (or its rows)."""
        if key not in state:
            shape = param.shape if dtype is None else param.shape[:1]
            state[key] = np.full(shape, fill, dtype=param.dtype if dtype is None else dtype)
        return state[key]

    def _update_dense(self, state, param, grad):
        raise NotImplementedError

    def _update_rows(self, state, param, rows, grad_rows):
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Return a copy of the step count and the per-parameter state."""
        state = {name: {key: np.array(value, copy=True) for key, value in entries.items()}
                 for name, entries in self.state.items()}
        return {"step_count": self.step_count, "state": state}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Restore state saved by :meth:`state_dict`, checking names and leading sizes."""
        params = {name: param for name, param, _ in self.model.parameters()}
        loaded = {}
        for name, entries in state_dict["state"].items():
            if name not in params:
                raise ValueError(
                    f"optimizer state contains parameter {name!r}, which the model does not have"
                )
            loaded[name] = {}
            for key, value in entries.items():
                value = np.array(value, copy=True)
                if value.ndim and value.shape[0] != params[name].shape[0]:
                    raise ValueError(
                        f"optimizer state {name!r}/{key!r} has shape {value.shape}, "
                        f"but the parameter has shape {params[name].shape}"
                    )
                loaded[name][key] = value if value.ndim else value.item()
        self.state = loaded
        self.step_count = int(state_dict["step_count"])


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum.

    ``v <- momentum * v + g`` then ``w <- w - lr * v`` (no momentum: ``w <- w - lr * g``).
    The buffer starts at zero, so the first step is ``w - lr * g``. PyTorch's SGD without
    dampening uses the same rule.

    Parameters
    ----------
    model : Module
    lr : float
        Learning rate, > 0.
    momentum : float
        Momentum coefficient, >= 0.
    weight_decay : float
        L2 coefficient added to the gradient, >= 0.
    clip_norm : float or None
        Maximum global gradient norm, > 0.
    """

    def __init__(self, model: Module, lr: float, *, momentum: float = 0.0,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(model, lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.momentum = _check_non_negative("momentum", momentum)

    def _update_dense(self, state, param, grad):
        if self.momentum:
            velocity = self._table_state(state, "momentum_buffer", param)
            velocity *= self.momentum
            velocity += grad
            grad = velocity
        param -= self.lr * grad

    def _update_rows(self, state, param, rows, grad_rows):
        if self.momentum:
            velocity = self._table_state(state, "momentum_buffer", param)
            grad_rows = self.momentum * velocity[rows] + grad_rows     # (R, K)
            velocity[rows] = grad_rows
        param[rows] -= self.lr * grad_rows


class Adagrad(Optimizer):
    """Adagrad: per-entry step sizes shrinking with the sum of squared gradients.

    ``s <- s + g^2`` then ``w <- w - lr * g / (sqrt(s) + eps)``, with ``s`` starting at
    ``initial_accumulator``.

    Parameters
    ----------
    model : Module
    lr : float
        Learning rate, > 0.
    eps : float
        Added to the denominator, > 0.
    initial_accumulator : float
        Starting value of ``s``, >= 0.
    weight_decay, clip_norm : see :class:`SGD`.
    """

    def __init__(self, model: Module, lr: float, *, eps: float = 1e-10,
                 initial_accumulator: float = 0.0, weight_decay: float = 0.0,
                 clip_norm: float | None = None):
        super().__init__(model, lr, weight_decay=weight_decay, clip_norm=clip_norm)
        self.eps = _check_positive("eps", eps)
        self.initial_accumulator = _check_non_negative("initial_accumulator",
                                                       initial_accumulator)

    def _update_dense(self, state, param, grad):
        accumulator = self._table_state(state, "sum", param, fill=self.initial_accumulator)
        accumulator += grad * grad
        param -= self.lr * grad / (np.sqrt(accumulator) + self.eps)

    def _update_rows(self, state, param, rows, grad_rows):
        accumulator = self._table_state(state, "sum", param, fill=self.initial_accumulator)
        accumulator_rows = accumulator[rows] + grad_rows * grad_rows   # (R, K)
        accumulator[rows] = accumulator_rows
        param[rows] -= self.lr * grad_rows / (np.sqrt(accumulator_rows) + self.eps)


class Adam(Optimizer):
    """Adam with bias correction, and per-row step counts for embedding tables.

    With ``t`` the number of updates this parameter (or table row) has received::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g^2
        m_hat = m / (1 - beta1^t),   v_hat = v / (1 - beta2^t)
        w <- w - lr * m_hat / (sqrt(v_hat) + eps)

    Parameters
    ----------
    model : Module
    lr : float
        Learning rate, > 0.
    betas : (float, float)
        Decay rates of the first and second moments, each in [0, 1).
    eps : float
        Added to ``sqrt(v_hat)``, > 0.
    weight_decay, clip_norm : see :class:`SGD`.
    """

    def __init__(self, model: Module, lr: float = 1e-3, *, betas=(0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, clip_norm: float | None = None):
        super().__init__(model, lr, weight_decay=weight_decay, clip_norm=clip_norm)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(
            _check_number(f"betas[{index}]", beta, "in [0, 1)", lambda v: 0 <= v < 1)
            for index, beta in enumerate(betas)
        )
        self.eps = _check_positive("eps", eps)
        self._correction_table = None   # (betas, 1 - beta1^t, sqrt(1 - beta2^t)), see below

    def _bias_corrections(self, t: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Return ``lr / (1 - beta1^t)`` and ``sqrt(1 - beta2^t)`` as (R, 1) for step counts t (R,).

        Both come from a float64 table over t, extended when a larger t appears, so that a
        step looks them up instead of computing 2 R powers.
        """
        largest = int(t.max())
        table = self._correction_table
        if table is None or table[0] != self.betas or table[1].shape[0] <= largest:
            beta1, beta2 = self.betas
            steps = np.arange(max(2 * largest, 1024))                  # (T,)
            table = (self.betas, 1.0 - beta1 ** steps, np.sqrt(1.0 - beta2 ** steps))
            self._correction_table = table
        _, correction1, sqrt_correction2 = table
        step_size = (self.lr / np.take(correction1, t)).astype(dtype)  # (R,)
        return step_size[:, None], np.take(sqrt_correction2, t).astype(dtype)[:, None]

    def _scaled_update(self, m, v, step_size, sqrt_correction2) -> np.ndarray:
        """Return ``lr m_hat / (sqrt(v_hat) + eps)`` from the moments and the corrections.

        With c1 = 1 - beta1^t and c2 = 1 - beta2^t this equals
        ``(lr / c1) m / (sqrt(v) / sqrt(c2) + eps)``: the corrections are scalars, or one
        value (R, 1) per table row, applied in the order of ``torch.optim.Adam``.
        """
        denominator = np.sqrt(v)
        denominator /= sqrt_correction2
        denominator += self.eps
        update = np.divide(m, denominator, out=denominator)
        update *= step_size
        return update

    def _update_dense(self, state, param, grad):
        beta1, beta2 = self.betas
        m = self._table_state(state, "exp_avg", param)
        v = self._table_state(state, "exp_avg_sq", param)
        state["step"] = t = state.get("step", 0) + 1
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * np.square(grad)
        step_size = self.lr / (1 - beta1 ** t)
        param -= self._scaled_update(m, v, step_size, math.sqrt(1 - beta2 ** t))

    def _update_rows(self, state, param, rows, grad_rows):
        beta1, beta2 = self.betas
        m = self._table_state(state, "exp_avg", param)
        v = self._table_state(state, "exp_avg_sq", param)
        steps = self._table_state(state, "step", param, fill=0, dtype=np.int64)  # (N,)

        # np.take reads the rows several times faster than fancy indexing (m[rows]). The
        # copies it returns are updated in place, then written back.
        t = np.take(steps, rows) + 1                                   # (R,)
        steps[rows] = t
        m_rows = np.take(m, rows, axis=0)                              # (R, K)
        m_rows *= beta1
        m_rows += (1 - beta1) * grad_rows
        v_rows = np.take(v, rows, axis=0)                              # (R, K)
        v_rows *= beta2
        v_rows += (1 - beta2) * np.square(grad_rows)
        set_rows(m, rows, m_rows)
        set_rows(v, rows, v_rows)

        # the dense update's formula, with each row's own t
        step_size, sqrt_correction2 = self._bias_corrections(t, param.dtype)  # (R, 1) each
        update = self._scaled_update(m_rows, v_rows, step_size, sqrt_correction2)  # (R, K)
        # rows are unique, so reading and writing them back equals param[rows] -= update
        new_rows = np.take(param, rows, axis=0)                        # (R, K)
        new_rows -= update
        set_rows(param, rows, new_rows)


def row_frequencies(*ids: np.ndarray, num_rows: int | None = None) -> np.ndarray:
    """Count how often each row id occurs in the given id arrays (any shapes), with bincount.

    Every id is counted as given, padding id 0 included. Returns an int64 array of length
    ``num_rows`` (default: largest id + 1); ids must lie in ``[0, num_rows)``.
    """
    flat = [np.asarray(block).reshape(-1) for block in ids]
    for block in flat:
        if block.size and not np.issubdtype(block.dtype, np.integer):
            raise ValueError(f"ids must be integer arrays, got dtype {block.dtype}")
    all_ids = np.concatenate(flat).astype(np.int64) if flat else np.zeros(0, dtype=np.int64)
    if all_ids.size and all_ids.min() < 0:
        raise ValueError(f"ids must be >= 0, got {all_ids.min()}")
    if num_rows is None:
        num_rows = int(all_ids.max()) + 1 if all_ids.size else 0
    elif all_ids.size and all_ids.max() >= num_rows:
        raise ValueError(f"ids must be < num_rows={num_rows}, got {all_ids.max()}")
    return np.bincount(all_ids, minlength=num_rows).astype(np.int64)


class MiniBatchAwareL2:
    """Mini-batch aware L2 regularization of embedding tables (Zhou et al. 2018).

    For every row ``j`` present in a table's current SparseGrad, :meth:`apply` adds
    ``strength * w_j / n_j`` to that row's gradient, where ``n_j`` is the row's number of
    occurrences in the training data (0 counts as 1). Rows absent from the batch get no
    penalty, and frequent rows are penalised less per step because they appear in more
    steps. This is the gradient of ``(strength / 2) * sum_j ||w_j||^2 / n_j`` over the rows
    in the batch. The DIN paper ("Deep Interest Network for Click-Through Rate Prediction",
    2018) introduces it so that L2 regularization of huge tables costs only the rows used.

    Call :meth:`apply` once per step, after ``backward`` and before ``optimizer.step()``.
    The optimizer's ``weight_decay`` applies to every parameter, tables included, so
    combining the two penalises these tables twice.

    Parameters
    ----------
    strength : float
        The coefficient lambda, >= 0.
    frequencies : dict of str to ndarray (N,)
        For each regularized table, by dotted parameter name, the count of each row.
    """

    def __init__(self, strength: float, frequencies: Mapping[str, np.ndarray]):
        self.strength = _check_non_negative("strength", strength)
        if not isinstance(frequencies, Mapping) or not frequencies:
            raise ValueError(
                "frequencies must be a non-empty dict from parameter name to row counts, "
                f"got {frequencies!r}"
            )
        self.frequencies: dict[str, np.ndarray] = {}
        for name, counts in frequencies.items():
            counts = np.asarray(counts, dtype=np.float64)
            if counts.ndim != 1 or not np.all(np.isfinite(counts)) or np.any(counts < 0):
                raise ValueError(
                    f"frequencies[{name!r}] must be a 1-D array of counts >= 0, "
                    f"got shape {counts.shape}"
                )
            self.frequencies[name] = np.maximum(counts, 1.0)

    def apply(self, model: Module) -> float:
        """Add the penalty's gradient to the batch's rows and return the penalty's value."""
        _check_model(model)
        tables = {name: (param, grad) for name, param, grad in model.parameters()}
        for name, counts in self.frequencies.items():
            if name not in tables:
                raise ValueError(
                    f"frequencies has an entry for {name!r}, but the model has no parameter "
                    "of that name"
                )
            param, grad = tables[name]
            if not isinstance(grad, SparseGrad):
                raise ValueError(
                    f"parameter {name!r} has a dense gradient, but MiniBatchAwareL2 applies "
                    "only to embedding tables (parameters with a SparseGrad)"
                )
            if counts.shape[0] != param.shape[0]:
                raise ValueError(
                    f"frequencies[{name!r}] has {counts.shape[0]} entries, but the table "
                    f"has {param.shape[0]} rows"
                )

        penalty = 0.0
        for name, counts in self.frequencies.items():
            param, grad = tables[name]
            rows, _ = grad.coalesce()                                  # (R,)
            if not rows.size:
                continue
            w_rows = param[rows]                                       # (R, K)
            scale = (self.strength / counts[rows]).astype(param.dtype)[:, None]  # (R, 1)
            grad.add(rows, scale * w_rows)
            penalty += 0.5 * float(np.sum(scale * w_rows * w_rows, dtype=np.float64))
        return penalty
