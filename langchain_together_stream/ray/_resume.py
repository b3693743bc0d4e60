"""Resuming a job after a crash, so the output holds every id exactly once.

Two ways, both keyed on the id column:

- `enable_checkpointing`: Ray Data's own row-level checkpointing (`CheckpointConfig`, alpha in
  recent Ray; present in 2.60, not exercised by this package's tests). With a file datasink
  such as `write_parquet` it commits each data file and its checkpoint together, and on the
  next run filters the ids already checkpointed out of the input as it is read. Needs a source
  that supports it (`read_parquet` and friends) and a checkpoint path every node can reach.
- `skip_written`: the same effect by hand, for any source and Ray version: read the ids already
  present in the output directory and filter them out of the input. Parquet files that do not
  read (cut short by the crash) are removed first, since their rows will be written again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

__all__ = ["enable_checkpointing", "skip_written", "written_ids"]

logger = logging.getLogger("langchain_together_stream.ray")


def enable_checkpointing(
    id_column: str, checkpoint_path: str | os.PathLike[str], **options: Any
) -> Any:
    """Turn on Ray Data's checkpointing for the jobs this driver runs from now on.

    Args:
        id_column: The unique id column (it must reach the output unchanged, as
            `TogetherBatchGenerator` keeps it).
        checkpoint_path: Where checkpoints live: a directory shared by every node, or a URI
            such as `s3://bucket/prefix`.
        **options: Further `ray.data.checkpoint.CheckpointConfig` arguments, e.g.
            `delete_checkpoint_on_success=False`.

    Returns:
        The `CheckpointConfig` now set on the current `DataContext`.
    """
    from ray.data import DataContext  # noqa: PLC0415 - Ray is an optional extra
    from ray.data.checkpoint import CheckpointConfig  # noqa: PLC0415

    config = CheckpointConfig(id_column=id_column, checkpoint_path=str(checkpoint_path), **options)
    DataContext.get_current().checkpoint_config = config
    return config


def written_ids(output_path: str | os.PathLike[str], id_column: str) -> set[Any]:
    """The ids already in a directory of Parquet output; unreadable files are removed.

    Args:
        output_path: The output directory (a missing one holds nothing).
        id_column: The id column.

    Returns:
        Every id found.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415 - a dependency of the ray extra

    root = Path(output_path)
    ids: set[Any] = set()
    if not root.is_dir():
        return ids
    for path in sorted(root.rglob("*.parquet")):
        try:
            column = pq.read_table(path, columns=[id_column]).column(id_column)
        except (OSError, ValueError) as exc:
            # A file cut short by the crash: its rows were never complete, so they run again.
            logger.warning("removing unreadable output file %s: %s", path, exc)
            path.unlink(missing_ok=True)
            continue
        ids.update(column.to_pylist())
    return ids


def skip_written(dataset: Any, output_path: str | os.PathLike[str], id_column: str) -> Any:
    """Drop from `dataset` the rows whose id is already in `output_path`.

    Args:
        dataset: The input `ray.data.Dataset`.
        output_path: The Parquet output directory of the earlier run(s).
        id_column: The id column.

    Returns:
        The dataset without the rows already written (the same dataset if none were).
    """
    done = written_ids(output_path, id_column)
    if not done:
        return dataset
    return dataset.map_batches(
        _drop_ids, fn_args=(sorted(done, key=repr), id_column), batch_format="pyarrow"
    )


def _drop_ids(batch: Any, done: list[Any], id_column: str) -> Any:
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    seen = pc.is_in(batch.column(id_column), value_set=pa.array(done))
    return batch.filter(pc.invert(seen))
