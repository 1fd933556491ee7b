"""The one place that talks to Horovod, with a single-process fallback.

Training, pretraining and inference code asks :func:`init` for a :class:`Context` and uses only
its methods: averaging gradients, broadcasting weights, gathering tensors and Python objects,
sharding work, per-rank seeds and learning-rate scaling. The same code then runs unchanged as
one process or as many Horovod ranks (``horovodrun``, ``mpirun``, ``srun --mpi=pmix``).

Only the low-level ``horovod.tensorflow`` API is used. Its Keras wrappers
(``horovod.tensorflow.keras``) do not work with Keras 3: ``DistributedOptimizer`` trains without
averaging gradients and the callbacks fail, so this module never imports them.

The module keeps no state of its own; Horovod keeps its own (initialised or not, rank, size),
and :func:`init` may be called any number of times.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ssl_backbones.errors import DistributedSetupError

#: Environment variables that launchers set in every rank: horovodrun (Gloo), Open MPI's
#: mpirun (also behind ``horovodrun --mpi``), MPICH/Intel MPI/``srun --mpi=pmi2``, PMIx
#: (``srun --mpi=pmix``) and MVAPICH.
LAUNCHER_RANK_VARS = (
    "HOROVOD_RANK",
    "OMPI_COMM_WORLD_RANK",
    "PMI_RANK",
    "PMIX_RANK",
    "MV2_COMM_WORLD_RANK",
)
_LAUNCHER_SIZE_VARS = (
    "HOROVOD_SIZE",
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "MV2_COMM_WORLD_SIZE",
    "SLURM_NTASKS",
)
COMPRESSIONS = ("none", "fp16")
LR_RULES = ("linear", "sqrt", "none")


# --- launch detection ---------------------------------------------------------------------------


def launched_by_mpi_or_horovodrun(environ: dict[str, str] | None = None) -> bool:
    """Whether this process was started by a multi-process launcher.

    Parameters
    ----------
    environ : dict, optional
        Environment to inspect (default ``os.environ``).

    Returns
    -------
    bool
        True when any variable of :data:`LAUNCHER_RANK_VARS` is set.
    """
    env = os.environ if environ is None else environ
    return any(name in env for name in LAUNCHER_RANK_VARS)


def launcher_size(environ: dict[str, str] | None = None) -> int | None:
    """Number of processes the launcher started, or None when it does not say.

    Parameters
    ----------
    environ : dict, optional
        Environment to inspect (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if not launched_by_mpi_or_horovodrun(env):
        return None
    for name in _LAUNCHER_SIZE_VARS:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def _import_horovod() -> tuple[Any | None, str]:
    """Import ``horovod.tensorflow``; return (module or None, reason it failed)."""
    try:
        import horovod.tensorflow as hvd
    except Exception as exc:  # ImportError, or a Horovod built without its TF extension
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return hvd, ""


def _active_horovod() -> Any | None:
    """Horovod's TF module when this process runs in an initialised job of two or more ranks.

    Reads only Horovod's own state; never initialises it and never imports it when nobody has.
    """
    hvd = sys.modules.get("horovod.tensorflow")
    if hvd is None or not hvd.is_initialized():
        return None
    return hvd if hvd.size() > 1 else None


# --- public entry point -------------------------------------------------------------------------


def init(use_horovod: bool | None = None, pin_gpu: bool = True) -> Context:
    """Start (or join) the distributed job and describe this process's place in it.

    Parameters
    ----------
    use_horovod : bool or None
        None: use Horovod when it imports and a launcher (horovodrun, mpirun, srun) started this
        process, else run as a single process. True: require Horovod (a single process started
        without a launcher becomes a job of size 1). False: always a single process.
    pin_gpu : bool
        Make only the GPU whose index is this rank's local rank visible to TensorFlow (with memory
        growth), so ranks on one node do not share a GPU. Ignored without GPUs, and when
        TensorFlow has already initialised its devices.

    Returns
    -------
    Context
        :class:`HorovodContext` or :class:`SingleContext`.

    Raises
    ------
    DistributedSetupError
        Horovod was required (``use_horovod=True``, or a launcher started several processes) but
        cannot be imported.
    """
    if use_horovod is False:
        return SingleContext()
    launched = launched_by_mpi_or_horovodrun()
    if use_horovod is None and not launched:
        return SingleContext()
    hvd, why = _import_horovod()
    if hvd is None:
        n = launcher_size()
        if use_horovod or n is None or n > 1:
            started = f"{n} processes were launched but " if n and n > 1 else ""
            raise DistributedSetupError(
                f"{started}Horovod is required and cannot be imported ({why}); "
                "install it with scripts/install_horovod.sh, or run one process without it"
            )
        return SingleContext()
    hvd.init()  # Horovod itself makes repeated calls a no-op
    if pin_gpu:
        _pin_gpu(hvd.local_rank())
    return HorovodContext(hvd)


def _pin_gpu(local_rank: int) -> None:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return
    gpu = gpus[local_rank % len(gpus)]
    try:
        tf.config.set_visible_devices(gpu, "GPU")
        tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError:
        # TensorFlow already created its devices (a second init() in the same process): the
        # first call pinned them, and they can no longer change.
        pass


# --- pure helpers (no communication) ----------------------------------------------------------


def shard_range(n_items: int, rank: int, size: int) -> slice:
    """Contiguous share of ``n_items`` work items for ``rank`` of ``size`` ranks.

    Shares differ in length by at most one; the first ``n_items % size`` ranks take one more.
    Together the shares cover ``range(n_items)`` exactly once, in rank order, so results
    gathered in rank order come back in item order.

    Returns
    -------
    slice
    """
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    if not 0 <= rank < size:
        raise ValueError(f"rank must be in [0, {size}), got {rank}")
    base, extra = divmod(n_items, size)
    start = rank * base + min(rank, extra)
    stop = start + base + (1 if rank < extra else 0)
    return slice(start, stop)


def rank_seed(base_seed: int, rank: int) -> int:
    """Seed derived from ``base_seed`` and ``rank``: distinct per rank, reproducible.

    Rank 0 of a job and a single process get the same seed, so a one-process run repeats rank
    0's random stream.

    Returns
    -------
    int
        In ``[0, 2**31)``, accepted by NumPy, ``tf.random`` and Keras seeds.
    """
    state = np.random.SeedSequence((int(base_seed), int(rank))).generate_state(1)
    return int(state[0] & 0x7FFFFFFF)


def lr_for_ranks(base_lr: float, size: int, rule: str = "linear") -> float:
    """Learning rate for ``size`` ranks from ``base_lr`` tuned for one rank's batch.

    Used by detector training, whose batch is set per rank; pretraining, whose batch is set
    for the whole job, uses :func:`ssl_backbones.schedules.lr_for_global_batch` instead.

    Parameters
    ----------
    base_lr : float
        Learning rate for one rank.
    size : int
        Number of ranks (the global batch is ``size`` times one rank's).
    rule : {"linear", "sqrt", "none"}
        "linear" (Goyal et al. 2017) multiplies by ``size``; "sqrt" by its square root, common
        with LARS/LAMB and large SimCLR batches; "none" keeps ``base_lr``.
    """
    if rule == "linear":
        return float(base_lr) * size
    if rule == "sqrt":
        return float(base_lr) * math.sqrt(size)
    if rule == "none":
        return float(base_lr)
    raise DistributedSetupError(
        f"learning-rate scaling rule {rule!r} is unknown; use one of {', '.join(LR_RULES)}"
    )


# --- contexts -----------------------------------------------------------------------------------


class Context:
    """This process's place in a (possibly one-process) job, and the collectives it may call.

    Attributes
    ----------
    rank, size : int
        Global rank of this process and number of processes.
    local_rank, local_size : int
        Rank among, and number of, processes on this node.
    is_root : bool
        True on rank 0, the only rank that logs, checkpoints and writes outputs.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        """True when there are two or more ranks."""
        return self.size > 1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rank={self.rank}, size={self.size}, "
            f"local_rank={self.local_rank}, local_size={self.local_size})"
        )

    # -- collectives (overridden by HorovodContext) -----------------------------------------

    def allreduce_gradients(self, grads: Sequence[Any], compression: str = "none") -> list:
        """Average gradients over ranks in one grouped allreduce.

        Parameters
        ----------
        grads : list of tf.Tensor, tf.IndexedSlices or None
            Gradients as returned by ``tape.gradient``; None entries stay None, sparse ones are
            made dense first.
        compression : {"none", "fp16"}
            "fp16" halves the bytes on the wire (values are cast to float16 for the transfer).

        Returns
        -------
        list
            Averaged gradients, same order and dtypes as ``grads``.
        """
        _check_compression(compression)
        return list(grads)

    def broadcast_variables(self, variables: Sequence[Any], root_rank: int = 0) -> None:
        """Overwrite ``variables`` on every rank with their values on ``root_rank``.

        Accepts Keras 3 variables (``model.variables``, ``optimizer.variables``) as well as
        ``tf.Variable``. Build the optimizer (``optimizer.build(model.trainable_variables)``)
        before broadcasting its variables.
        """

    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        """Return ``root_rank``'s ``obj`` (any picklable Python object) on every rank."""
        return obj

    def allgather(self, tensor: Any) -> tf.Tensor:
        """Concatenate ``tensor`` from all ranks, in rank order, along axis 0.

        The first dimension may differ between ranks. Gradients flow back through it: the
        gradient for this rank's slice is the *sum* of the gradients all ranks send to it, so
        that averaging parameter gradients over ranks (:meth:`allreduce_gradients`) gives the
        gradient of the mean per-rank loss, exactly as one process with every batch would.
        """
        return tf.convert_to_tensor(tensor)

    def allgather_object(self, obj: Any) -> list:
        """List of every rank's ``obj`` (any picklable Python object), in rank order."""
        return [obj]

    def average(self, value: float) -> float:
        """Mean of a scalar metric over ranks."""
        return float(value)

    def average_tensor(self, tensor: Any) -> tf.Tensor:
        """Element-wise mean of ``tensor`` over ranks (same shape on every rank); usable inside
        ``tf.function``. For running statistics that every rank must keep equal, such as
        DINO's teacher centre; no gradient flows through it."""
        return tf.convert_to_tensor(tensor)

    def sum(self, value: float) -> float:
        """Sum of a scalar (counts, totals) over ranks."""
        return float(value)

    def sync_batch_norm_stats(self, x: Any, axes: Sequence[int]) -> tuple[tf.Tensor, tf.Tensor]:
        """Mean and variance of ``x`` over ``axes`` and over all ranks' batches.

        See :func:`sync_moments`.
        """
        return sync_moments(x, axes)

    def barrier(self) -> None:
        """Return only when every rank has called it."""

    # -- helpers that need no communication --------------------------------------------------

    def shard(self, n_items: int) -> slice:
        """This rank's contiguous share of ``n_items`` work items (see :func:`shard_range`).

        Use as ``items[ctx.shard(len(items))]``.
        """
        return shard_range(n_items, self.rank, self.size)

    def seed_for(self, base_seed: int) -> int:
        """A seed for this rank derived from ``base_seed`` (see :func:`rank_seed`)."""
        return rank_seed(base_seed, self.rank)

    def lr_for_ranks(self, base_lr: float, rule: str = "linear") -> float:
        """Learning rate for this job's ``size`` ranks (see :func:`lr_for_ranks`)."""
        return lr_for_ranks(base_lr, self.size, rule)

    def root_only(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap ``fn`` so that it runs on the root rank only (returns None on the others).

        For logging, checkpoints and output files: ``save = ctx.root_only(save)``.
        """

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if self.is_root:
                return fn(*args, **kwargs)
            return None

        return wrapper


class SingleContext(Context):
    """One process: collectives are identities, :meth:`shard` takes everything."""


class HorovodContext(Context):
    """A rank of a Horovod job; collectives go through ``horovod.tensorflow``.

    Parameters
    ----------
    hvd : module
        ``horovod.tensorflow``, already initialised.
    """

    def __init__(self, hvd: Any) -> None:
        self._hvd = hvd
        self.rank = hvd.rank()
        self.size = hvd.size()
        self.local_rank = hvd.local_rank()
        self.local_size = hvd.local_size()

    @property
    def controller(self) -> str:
        """"mpi" or "gloo": the controller Horovod runs on."""
        return "mpi" if self._hvd.mpi_enabled() else "gloo"

    def allreduce_gradients(self, grads: Sequence[Any], compression: str = "none") -> list:
        _check_compression(compression)
        hvd = self._hvd
        grads = list(grads)
        present = [i for i, g in enumerate(grads) if g is not None]
        if not present:
            return grads
        dense = [tf.convert_to_tensor(grads[i]) for i in present]
        codec = hvd.Compression.fp16 if compression == "fp16" else hvd.Compression.none
        reduced = hvd.grouped_allreduce(dense, op=hvd.Average, compression=codec)
        for i, g in zip(present, reduced):
            grads[i] = g
        return grads

    def broadcast_variables(self, variables: Sequence[Any], root_rank: int = 0) -> None:
        # Keras 3 variables wrap a tf.Variable; Horovod assigns to the wrapped one.
        tf_vars = [v.value if isinstance(v, keras.Variable) else v for v in variables]
        if tf_vars:
            self._hvd.broadcast_variables(tf_vars, root_rank=root_rank)

    def broadcast_object(self, obj: Any, root_rank: int = 0) -> Any:
        return self._hvd.broadcast_object(obj, root_rank=root_rank)

    def allgather(self, tensor: Any) -> tf.Tensor:
        hvd = self._hvd
        rank, size = self.rank, self.size

        # Horovod's own allgather gradient *averages* the incoming gradients over ranks, which
        # under-weights every cross-rank term by 1/size once the parameter gradients are
        # averaged too. Summing them instead makes "mean over ranks of per-rank gradients" the
        # exact gradient of the mean per-rank loss, as with one process holding every batch.
        @tf.custom_gradient
        def gather(x: tf.Tensor) -> tuple[tf.Tensor, Callable[[tf.Tensor], tf.Tensor]]:
            def grad(upstream: tf.Tensor) -> tf.Tensor:
                total = hvd.allreduce(upstream, op=hvd.Sum)
                rows = hvd.allgather(tf.shape(x)[:1])
                # num: inside tf.function the row counts are only known at run time.
                return tf.split(total, rows, num=size, axis=0)[rank]

            return hvd.allgather(x), grad

        return gather(tf.convert_to_tensor(tensor))

    def allgather_object(self, obj: Any) -> list:
        return list(self._hvd.allgather_object(obj))

    def average(self, value: float) -> float:
        hvd = self._hvd
        return float(hvd.allreduce(tf.constant(float(value), tf.float64), op=hvd.Average))

    def average_tensor(self, tensor: Any) -> tf.Tensor:
        hvd = self._hvd
        return hvd.allreduce(tf.stop_gradient(tf.convert_to_tensor(tensor)), op=hvd.Average)

    def sum(self, value: float) -> float:
        hvd = self._hvd
        return float(hvd.allreduce(tf.constant(float(value), tf.float64), op=hvd.Sum))

    def barrier(self) -> None:
        # horovod.tensorflow has no barrier; a blocking allreduce of one number is one.
        hvd = self._hvd
        hvd.allreduce(tf.zeros([], tf.float32), op=hvd.Sum).numpy()


def _check_compression(compression: str) -> None:
    if compression not in COMPRESSIONS:
        raise DistributedSetupError(
            f"gradient compression {compression!r} is unknown; use one of {', '.join(COMPRESSIONS)}"
        )


# --- synchronised batch normalisation -----------------------------------------------------------


def sync_moments(
    x: Any, axes: Sequence[int], keepdims: bool = False
) -> tuple[tf.Tensor, tf.Tensor]:
    """Mean and (biased) variance of ``x`` over ``axes``, pooled over all ranks' batches.

    Ranks may hold different batch sizes: each element counts once. Two allreduces (sums, then
    squared deviations from the global mean) keep the variance as accurate as a one-process
    ``tf.nn.moments`` on the concatenated batch. Gradients flow through both. Without a
    Horovod job of two or more ranks this is ``tf.nn.moments``.

    Parameters
    ----------
    x : tf.Tensor
        Floating-point activations, e.g. (batch, height, width, channels).
    axes : sequence of int
        Axes to reduce, e.g. ``[0, 1, 2]`` for per-channel statistics.
    keepdims : bool
        Keep the reduced axes with length 1.

    Returns
    -------
    mean, variance : tf.Tensor
    """
    x = tf.convert_to_tensor(x)
    axes = [int(a) for a in axes]
    hvd = _active_horovod()
    if hvd is None:
        return tf.nn.moments(x, axes, keepdims=keepdims)
    local_sum = tf.reduce_sum(x, axes, keepdims=True)
    # Element count rides in the same message as the sums: one collective instead of two.
    count = tf.cast(tf.size(x), x.dtype) / tf.cast(tf.size(local_sum), x.dtype)
    packed = tf.concat([tf.reshape(local_sum, [-1]), tf.reshape(count, [1])], axis=0)
    total = hvd.allreduce(packed, op=hvd.Sum)
    n = total[-1]
    mean = tf.reshape(total[:-1], tf.shape(local_sum)) / n
    sq_dev = tf.reduce_sum(tf.square(x - mean), axes, keepdims=True)
    variance = hvd.allreduce(sq_dev, op=hvd.Sum) / n
    if not keepdims:
        mean = tf.squeeze(mean, axes)
        variance = tf.squeeze(variance, axes)
    return mean, variance


@keras.saving.register_keras_serializable(package="ssl_backbones")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """Batch normalisation whose training statistics span every rank's batch.

    A drop-in replacement for ``keras.layers.BatchNormalization`` (same arguments, same
    weights, so checkpoints load into either). In a Horovod job of two or more ranks, training
    mode normalises with :func:`sync_moments`; otherwise, and at inference, it is the plain
    layer. With a mask, statistics stay local to the rank.
    """

    def _moments(self, inputs: Any, mask: Any) -> tuple[Any, Any]:
        if mask is not None or _active_horovod() is None:
            return super()._moments(inputs, mask)
        return sync_moments(inputs, self._reduction_axes)
