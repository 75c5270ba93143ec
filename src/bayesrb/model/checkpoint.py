"""Checkpoints of a training run and the saved model, with orbax.

Arrays are saved as a flat dict of the leaves of a pytree (``"00000"``, ``"00001"``, ... in
:func:`jax.tree.leaves` order) and restored into the structure of a pytree built the same way (e.g. by
initialising the same method with the same config). This keeps any pytree (NumPyro SVI states, optax states,
Flax parameters) saveable, and a mismatch of shapes is reported instead of silently restored. JSON metadata
travels with the arrays.

Layout::

    TRAINING_DIR/checkpoints/<epochs done>/   orbax CheckpointManager step: "arrays" and "meta" (JSON)
    MODEL_DIR/                                written atomically: "params/" (orbax) and "model.json"
"""

import json
import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from bayesrb.atomic import atomic_path
from bayesrb.errors import BadInputError

__all__ = ["MODEL_META", "TrainingCheckpoints", "save_model", "read_model_meta", "restore_params"]

MODEL_META = "model.json"
PARAMS_DIR = "params"


def _leaf_dict(tree: Any) -> dict[str, jax.Array]:
    return {f"{i:05d}": leaf for i, leaf in enumerate(jax.tree.leaves(tree))}


def _abstract_leaf_dict(like: Any) -> dict[str, jax.ShapeDtypeStruct]:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, _leaf_dict(like))


def _unflatten(leaves: dict[str, jax.Array], like: Any) -> Any:
    return jax.tree.unflatten(jax.tree.structure(like), [leaves[name] for name in sorted(leaves)])


def _check_fits(source: Path, stored: dict[str, Any], like: Any) -> None:
    """Raise BadInputError naming ``source`` unless the stored arrays have the leaves, shapes and dtypes of ``like``."""
    expected = _abstract_leaf_dict(like)
    if len(stored) != len(expected):
        raise BadInputError(source, f"checkpoint holds {len(stored)} arrays but the model has {len(expected)}; "
                                    f"it was written for another model")
    for name, want in expected.items():
        got = stored[name]
        if tuple(got.shape) != tuple(want.shape) or got.dtype != want.dtype:
            raise BadInputError(source, f"checkpoint array {name} has shape {tuple(got.shape)} {got.dtype} but the "
                                        f"model needs {tuple(want.shape)} {want.dtype}; it was written for "
                                        f"another model")


class TrainingCheckpoints:
    """The per-epoch checkpoints of a training run (only the latest is kept).

    Saves are asynchronous; :meth:`save` waits for the previous save and :meth:`close` for the last.

    Parameters
    ----------
    directory : str or os.PathLike
        Where the checkpoints live (created if needed).
    """

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory).resolve()
        options = ocp.CheckpointManagerOptions(max_to_keep=1, create=True)
        handlers = {"arrays": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
        self._manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

    def __enter__(self) -> "TrainingCheckpoints":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def latest_epoch(self) -> int | None:
        """Number of epochs done at the latest checkpoint, or None if there is none."""
        return self._manager.latest_step()

    def save(self, epochs_done: int, arrays: Any, meta: dict[str, Any]) -> None:
        """Save the pytree ``arrays`` and the JSON-serialisable ``meta`` after ``epochs_done`` epochs."""
        self._manager.save(epochs_done, args=ocp.args.Composite(arrays=ocp.args.StandardSave(_leaf_dict(arrays)),
                                                                meta=ocp.args.JsonSave(meta)))

    def read_meta(self) -> dict[str, Any]:
        """The metadata of the latest checkpoint (which must exist)."""
        step = self._manager.latest_step()
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, like: Any) -> Any:
        """The arrays of the latest checkpoint, in the structure of the pytree ``like``.

        Raises
        ------
        bayesrb.errors.BadInputError
            If the stored arrays do not fit ``like``.
        """
        step = self._manager.latest_step()
        stored = self._manager.item_metadata(step)["arrays"].tree
        _check_fits(self.directory / str(step), stored, like)
        restored = self._manager.restore(step, args=ocp.args.Composite(
            arrays=ocp.args.StandardRestore(_abstract_leaf_dict(like))))
        return _unflatten(restored["arrays"], like)

    def close(self) -> None:
        """Wait for pending saves and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()


def save_model(model_dir: str | os.PathLike, params: Any, meta: dict[str, Any]) -> None:
    """Write a model directory atomically: the pytree ``params`` and ``meta`` as ``model.json``.

    Parameters
    ----------
    model_dir : str or os.PathLike
        The directory to create or replace.
    params : pytree
        The parameters scoring needs.
    meta : dict
        JSON-serialisable description of the model (kind, settings, input spec, ...).
    """
    with atomic_path(model_dir, directory_signature=MODEL_META) as tmp, ocp.StandardCheckpointer() as checkpointer:
        tmp = tmp.resolve()
        tmp.mkdir()
        checkpointer.save(tmp / PARAMS_DIR, _leaf_dict(params))
        checkpointer.wait_until_finished()
        (tmp / MODEL_META).write_text(json.dumps(meta, indent=2))


def read_model_meta(model_dir: str | os.PathLike) -> dict[str, Any]:
    """Read ``model.json`` of a model directory.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the directory, ``model.json`` or the parameters are missing, or ``model.json`` is not JSON.
    """
    model_dir = Path(model_dir)
    path = model_dir / MODEL_META
    if not path.is_file() or not (model_dir / PARAMS_DIR).is_dir():
        raise BadInputError(model_dir, f"not a trained model: {MODEL_META} or {PARAMS_DIR}/ is missing (train one "
                                       f"with bayesrb.model.train.train; its model is the 'model' directory)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BadInputError(path, f"not valid JSON ({error})") from error


def restore_params(model_dir: str | os.PathLike, like: Any) -> Any:
    """Restore the parameters of a model directory into the structure of the pytree ``like``.

    Raises
    ------
    bayesrb.errors.BadInputError
        If the parameters are unreadable or do not fit ``like`` (shapes, dtypes or number of arrays).
    """
    path = (Path(model_dir) / PARAMS_DIR).resolve()
    with ocp.StandardCheckpointer() as checkpointer:
        try:
            stored = checkpointer.metadata(path).item_metadata.tree
        except Exception as error:  # orbax raises several types for a damaged checkpoint
            raise BadInputError(path, f"unreadable checkpoint ({type(error).__name__}: {error})") from error
        _check_fits(path, stored, like)
        return _unflatten(checkpointer.restore(path, _abstract_leaf_dict(like)), like)
