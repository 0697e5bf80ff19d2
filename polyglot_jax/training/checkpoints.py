"""Orbax checkpoints in ``MODEL_DIR/checkpoint_<step>``: train state plus the data position.

Each checkpoint has up to four items: ``params`` (what inference restores alone),
``train_state`` (step, optimizer state, RNG), ``data`` (JSON: what the input stream was built
from) and ``data_iterator`` (each host's ``tf.data`` position, one file set per process).
Arrays are written asynchronously; the data position is captured before :meth:`save` returns.
:meth:`Checkpointer.restore_latest` restores onto the target sharding and falls back to the
previous checkpoint, with a warning, when the latest cannot be read. The stored parameter shapes
are compared with the model's before anything is read, so a checkpoint of another model size is
one error naming the checkpoint and the differing parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import tempfile
from typing import Any

import gin
import jax
import orbax.checkpoint as ocp
from etils import epath

from polyglot_jax import storage
from polyglot_jax.data.pipeline import BatchIterator
from polyglot_jax.errors import CheckpointError
from polyglot_jax.training.trainer import TrainState

log = logging.getLogger(__name__)


class ShapeMismatchError(CheckpointError):
    """The checkpoint holds parameters of other names or shapes than the model (another size)."""


@gin.configurable
class Checkpointer:
    """Saves and restores a :class:`~polyglot_jax.training.trainer.TrainState` and data position.

    Args:
      model_dir: run directory; checkpoints go to ``model_dir/checkpoint_<step>``.
      max_to_keep: newest checkpoints kept on disk.
      async_save: write in a background thread while training continues.
    """

    def __init__(
        self, model_dir: str | os.PathLike, max_to_keep: int = 3, async_save: bool = True
    ) -> None:
        directory = storage.as_path(model_dir)
        self.directory = directory.absolute() if storage.is_local(directory) else directory
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                step_prefix="checkpoint",
                enable_async_checkpointing=async_save,
                create=True,
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(
        self,
        step: int,
        state: TrainState,
        data: dict[str, Any],
        batches: BatchIterator | None = None,
        force: bool = False,
    ) -> bool:
        """Starts saving ``state``, the JSON-able ``data`` and the position of ``batches``."""
        items = {
            "params": ocp.args.StandardSave(state.params),
            "train_state": ocp.args.StandardSave(_rest(state)),
            "data": ocp.args.JsonSave(data),
        }
        if batches is not None:
            items["data_iterator"] = DataIteratorSave(batches)
        return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

    def restore(
        self, step: int, abstract_state: TrainState, batches: BatchIterator | None = None
    ) -> tuple[TrainState, dict[str, Any]]:
        """Restores ``checkpoint_<step>`` onto ``abstract_state``'s shapes and shardings.

        With ``batches``, its position is also restored (in place).

        Raises:
          ShapeMismatchError: the stored parameters are not the model's (another size).
        """
        self.check_shapes(step, abstract_state.params)
        items = {
            "params": ocp.args.StandardRestore(abstract_state.params),
            "train_state": ocp.args.StandardRestore(_rest(abstract_state)),
            "data": ocp.args.JsonRestore(),
        }
        if batches is not None:
            items["data_iterator"] = DataIteratorRestore(batches)
        restored = self.manager.restore(step, args=ocp.args.Composite(**items))
        rest = restored["train_state"]
        state = abstract_state.replace(
            params=restored["params"],
            step=rest["step"],
            opt_state=rest["opt_state"],
            rng=rest["rng"],
        )
        return state, dict(restored["data"] or {})

    def restore_params(self, step: int, abstract_params: Any) -> Any:
        """Restores only the parameters of ``checkpoint_<step>`` (for inference).

        Raises:
          ShapeMismatchError: the stored parameters are not the model's (another size).
        """
        self.check_shapes(step, abstract_params)
        restored = self.manager.restore(
            step, args=ocp.args.Composite(params=ocp.args.StandardRestore(abstract_params))
        )
        return restored["params"]

    def check_shapes(self, step: int, abstract_params: Any) -> None:
        """Compares the parameter shapes stored in ``checkpoint_<step>`` with the model's.

        A checkpoint whose metadata cannot be read is left to the restore to report.

        Raises:
          ShapeMismatchError: a parameter is missing, extra or of another shape; the message
            names the checkpoint and the first differing parameters.
        """
        directory = self.directory / f"checkpoint_{step}" / "params"
        try:
            stored = ocp.StandardCheckpointHandler().metadata(directory)
        except Exception:  # damaged metadata: the restore reports it
            return
        have = _shapes(getattr(stored, "tree", stored))
        want = _shapes(abstract_params)
        differ = [
            f"{name} {have.get(name, 'missing')} stored, {want.get(name, 'none')} expected"
            for name in sorted(set(have) | set(want))
            if have.get(name) != want.get(name)
        ]
        if differ:
            shown = "; ".join(differ[:3]) + (f"; and {len(differ) - 3} more" if differ[3:] else "")
            raise ShapeMismatchError(
                f"{directory.parent} holds a model of another size or architecture than "
                f"model_config.json describes: {shown}"
            )

    def restore_latest(
        self, abstract_state: Any, batches: BatchIterator | None = None
    ) -> tuple[int, Any, dict[str, Any]] | None:
        """The newest readable checkpoint as ``(step, state, data)``, or None if there is none.

        With ``batches``, its position is restored from the same checkpoint.

        Unreadable checkpoints (truncated, corrupt, wrong shapes) are skipped with a warning;
        if checkpoints exist but none is readable, :class:`CheckpointError` is raised.
        """
        steps = sorted(self.manager.all_steps(), reverse=True)
        for step in steps:
            try:
                state, data = self.restore(step, abstract_state, batches)
            except ShapeMismatchError:
                raise  # not damage: every checkpoint of the run is of that other model
            except Exception as e:  # orbax raises many types for damaged files
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                log.warning(
                    "checkpoint %s/checkpoint_%d is unreadable (%s); trying an older one",
                    self.directory,
                    step,
                    reason[:200],
                )
                continue
            return step, state, data
        if steps:
            raise CheckpointError(f"no readable checkpoint in {self.directory} (tried {steps})")
        return None

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """``{"layers_0.mlp.up_proj.kernel": shape}`` of every array of a parameter tree."""
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {
        ".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): tuple(leaf.shape)
        for path, leaf in flat
        if hasattr(leaf, "shape")
    }


def _rest(state: TrainState) -> dict[str, Any]:
    return {"step": state.step, "opt_state": state.opt_state, "rng": state.rng}


def _process_name() -> str:
    return f"process_{jax.process_index()}-of-{jax.process_count()}"


class DataIteratorHandler(ocp.CheckpointHandler):
    """Orbax handler for each host's :class:`~polyglot_jax.data.pipeline.BatchIterator` position.

    ``tf.data`` writes the position to local files, which are copied into the checkpoint through
    ``epath``: the same code path for a local run directory and a ``gs://`` one.
    """

    def save(self, directory: epath.Path, args: DataIteratorSave) -> None:
        name = _process_name()
        with tempfile.TemporaryDirectory() as local:
            args.batches.save(pathlib.Path(local) / name)
            for file in sorted(pathlib.Path(local).iterdir()):
                (directory / file.name).write_bytes(file.read_bytes())

    def restore(self, directory: epath.Path, args: DataIteratorRestore) -> BatchIterator:
        name = _process_name()
        files = [p for p in directory.iterdir() if p.name.startswith(f"{name}.")]
        if not any(p.name == f"{name}.index" for p in files):
            have = sorted(p.name for p in directory.glob("*.index"))
            raise CheckpointError(
                f"{directory / name}: no data position for this process (written by {have}); "
                f"resume with the same number of processes"
            )
        with tempfile.TemporaryDirectory() as local:
            for file in files:
                (pathlib.Path(local) / file.name).write_bytes(file.read_bytes())
            args.batches.restore(pathlib.Path(local) / name)
        return args.batches

    def metadata(self, directory: epath.Path) -> None:
        return None

    def finalize(self, directory: epath.Path) -> None:
        pass

    def close(self) -> None:
        pass


@ocp.args.register_with_handler(DataIteratorHandler, for_save=True)
@dataclasses.dataclass
class DataIteratorSave(ocp.args.CheckpointArgs):
    batches: BatchIterator


@ocp.args.register_with_handler(DataIteratorHandler, for_restore=True)
@dataclasses.dataclass
class DataIteratorRestore(ocp.args.CheckpointArgs):
    batches: BatchIterator
