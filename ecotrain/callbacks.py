"""Training-framework callbacks that report progress and saved checkpoints to an ecotrain run.

Neither framework is a dependency: each callback class is built by a factory function the
first time it is asked for, and only then is the framework imported.

    from ecotrain.callbacks import hf_callback, lightning_callback

    with ecotrain.track(project="bert") as run:
        trainer = transformers.Trainer(..., callbacks=[hf_callback(run)])
        trainer.train()

    trainer = lightning.Trainer(callbacks=[lightning_callback()])   # under `ecotrain run`

``run`` is optional: without it the callbacks report to the enclosing `ecotrain run`
(``ECOTRAIN_RUN_ID``) through a :class:`ecotrain.track` attached to it, so training scripts
wrapped by `ecotrain run` get progress, predictions and checkpoints with no other change.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any


class ProgressReporter:
    """What both callbacks share: a run to report to, and the reports themselves."""

    def __init__(self, run: Any = None) -> None:
        self._run = run
        self._tracker: Any = None
        self._loggers_checked = False

    # Said in the record of a run the callback measured itself (no `ecotrain run` around it).
    SPAN = (
        "measured by the {framework} callback alone, from {start} to the end of training: "
        "model loading and anything else the script did outside it are not included "
        "(wrap the script in `ecotrain run` to measure all of it)"
    )

    def start(self, framework: str, start: str) -> Any:
        """Start (or attach to) the run now, and say what span it measures when the
        callback is the only measurement."""
        run = self.run
        if self._tracker is not None and getattr(run, "attached_to", None) is None:
            run.note(self.SPAN.format(framework=framework, start=start))
        return run

    @property
    def run(self) -> Any:
        """The run reported to; attaches to the enclosing run on first use if none given."""
        if self._run is None:
            from ecotrain.api import track

            self._tracker = track()
            self._run = self._tracker.__enter__()
        return self._run

    def model(self, model: Any) -> None:
        """Link the model the trainer was given: the files it came from (a local folder or
        file, or its Hugging Face cache snapshot), else its Hugging Face id. Its weights
        were read before the callback existed, so no hook could see them."""
        config = getattr(model, "config", None)
        name = getattr(model, "name_or_path", None) or getattr(config, "_name_or_path", None)
        if not name or not isinstance(name, str):
            return
        local = Path(name).expanduser()
        if local.exists():
            self.run.log_checkpoint(local, role="consumed")
            return
        snapshot = _hf_snapshot(name, getattr(config, "_commit_hash", None))
        if snapshot is not None:
            self.run.log_checkpoint(snapshot, role="consumed")
        else:
            self.run.log_checkpoint(name, role="consumed")

    def step(
        self,
        step: int | None,
        total: int | None,
        tokens: float | None = None,
        samples: float | None = None,
    ) -> None:
        """Report a finished optimisation step when the total is known, with the tokens or
        samples processed so far where the trainer knows them."""
        if not self._loggers_checked:
            # MLflow / W&B runs the trainer started (on train begin) get per-step energy
            self._loggers_checked = True
            from ecotrain.api import _attach_loggers

            _attach_loggers(self.run)
        if step is not None and total:
            work = {k: v for k, v in (("tokens", tokens), ("samples", samples)) if v}
            self.run.progress(step, total, **work)

    def epoch(self, epoch: float | None, total: float | None) -> None:
        """Report a finished epoch when the number of epochs is known."""
        if epoch is not None and total:
            self.run.epoch(epoch, total)

    def checkpoint(self, path: str | Path) -> None:
        """Log a saved checkpoint: a checkpoint folder as one checkpoint, else every model
        file in the folder (or the file itself)."""
        from ecotrain.lineage import checkpoint_folder

        path = Path(path)
        if path.is_dir() and checkpoint_folder(str(path)):
            self.run.log_checkpoint(path, role="produced")
        elif path.is_dir():
            for file in sorted(path.iterdir()):
                if file.suffix in MODEL_SUFFIXES:
                    self.run.log_checkpoint(file, role="produced")
        elif path.exists():
            self.run.log_checkpoint(path, role="produced")

    def close(self) -> None:
        """End the run this reporter started itself (none when one was given)."""
        if self._tracker is not None:
            self._tracker.__exit__(None, None, None)
            self._tracker = None


MODEL_SUFFIXES = frozenset({".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5"})


def _hf_snapshot(repo: str, revision: str | None) -> Path | None:
    """The Hugging Face cache snapshot folder of ``repo`` (at ``revision``), if present."""
    import os

    from ecotrain.lineage import HF_ID

    if not HF_ID.match(repo) and "/" in repo:
        return None
    home = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.expanduser("~/.cache/huggingface"), "hub"
    )
    snapshots = Path(home) / f"models--{repo.replace('/', '--')}" / "snapshots"
    if revision and (snapshots / revision).is_dir():
        return snapshots / revision
    try:
        found = sorted(snapshots.iterdir(), key=lambda p: p.stat().st_mtime)
    except OSError:
        return None
    return found[-1] if found else None


@functools.cache
def _hf_class() -> type:
    from transformers import TrainerCallback

    class EcotrainHFCallback(TrainerCallback):
        """Hugging Face Trainer callback: steps and epochs as progress, saves as checkpoints."""

        def __init__(self, run: Any = None) -> None:
            self.reporter = ProgressReporter(run)

        def on_init_end(self, args, state, control, **kwargs):  # noqa: ANN001
            # Measure from the Trainer's creation, not from the first step.
            self.reporter.start("Hugging Face Trainer", "Trainer creation")

        def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ANN001
            self.reporter.start("Hugging Face Trainer", "the start of training")
            if model is not None:
                self.reporter.model(model)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            # Tokens only when the Trainer counts them (include_num_input_tokens_seen);
            # samples = steps x the global batch (per-device x devices x accumulation).
            tokens = getattr(state, "num_input_tokens_seen", None) or None
            batch = getattr(args, "train_batch_size", 0) * getattr(args, "world_size", 1)
            batch *= getattr(args, "gradient_accumulation_steps", 1)
            samples = state.global_step * batch if batch else None
            self.reporter.step(state.global_step, state.max_steps, tokens, samples)

        def on_epoch_end(self, args, state, control, **kwargs):  # noqa: ANN001
            # With max_steps set, the steps are the progress (num_train_epochs is ignored
            # by the Trainer then, and epoch / num_train_epochs would read 0.94/3).
            if not (getattr(args, "max_steps", 0) or 0) > 0:
                self.reporter.epoch(state.epoch, args.num_train_epochs)

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            # Trainer saves into <output_dir>/checkpoint-<global_step>
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            self.reporter.checkpoint(folder)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            self.reporter.close()

    return EcotrainHFCallback


@functools.cache
def _lightning_class() -> type:
    try:
        from lightning.pytorch.callbacks import Callback
    except ImportError:
        from pytorch_lightning.callbacks import Callback

    class EcotrainLightningCallback(Callback):
        """PyTorch Lightning callback: batches and epochs as progress, checkpoints logged."""

        def __init__(self, run: Any = None) -> None:
            self.reporter = ProgressReporter(run)
            self.samples = 0  # samples seen on all devices, counted batch by batch

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):  # noqa: ANN001
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            if total is None and trainer.num_training_batches and trainer.max_epochs:
                total = trainer.num_training_batches * trainer.max_epochs
            size = batch_size(batch)
            if size:
                self.samples += size * (getattr(trainer, "world_size", 1) or 1)
            self.reporter.step(trainer.global_step, total, samples=self.samples or None)

        def on_train_epoch_end(self, trainer, pl_module):  # noqa: ANN001
            if trainer.max_steps and trainer.max_steps > 0:
                return  # the steps are the progress (max_epochs is -1 or a cap then)
            self.reporter.epoch(trainer.current_epoch + 1, trainer.max_epochs)

        def on_save_checkpoint(self, trainer, pl_module, checkpoint):  # noqa: ANN001
            # the file is written after this hook: log the best/last paths already on disk
            cb = trainer.checkpoint_callback
            for path in (getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", "")):
                if path:
                    self.reporter.checkpoint(path)

        def on_fit_end(self, trainer, pl_module):  # noqa: ANN001
            cb = trainer.checkpoint_callback
            for path in (getattr(cb, "last_model_path", ""), getattr(cb, "best_model_path", "")):
                if path:
                    self.reporter.checkpoint(path)
            self.reporter.close()

    return EcotrainLightningCallback


def batch_size(batch: Any) -> int | None:
    """Samples in a training batch: the first dimension of a tensor, or of the first tensor
    in a tuple, list or dict (inputs first, as Lightning batches usually are); else None."""
    if isinstance(batch, dict):
        batch = next(iter(batch.values()), None)
    elif isinstance(batch, list | tuple):
        batch = batch[0] if batch else None
    shape = getattr(batch, "shape", None)
    try:
        return int(shape[0]) if shape is not None and len(shape) > 0 else None
    except (TypeError, ValueError, IndexError):
        return None


def hf_callback(run: Any = None) -> Any:
    """A ``transformers.TrainerCallback`` reporting to ``run`` (default: the enclosing run).

    Raises ImportError with a one-line reason when transformers is not installed.
    """
    try:
        cls = _hf_class()
    except ImportError as e:
        raise ImportError(f"hf_callback needs transformers: pip install transformers ({e})") from e
    return cls(run)


def lightning_callback(run: Any = None) -> Any:
    """A PyTorch Lightning ``Callback`` reporting to ``run`` (default: the enclosing run)."""
    try:
        cls = _lightning_class()
    except ImportError as e:
        raise ImportError(f"lightning_callback needs lightning: pip install lightning ({e})") from e
    return cls(run)
