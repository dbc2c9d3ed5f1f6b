"""What every suite shares: a resumable JSONL of results, parallel execution, progress."""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm


class ResultStore:
    """Results of a run, one JSON object per line, appended as they come.

    A record's key (the values of ``key_fields``) says which job it answers; a job whose key
    is already in the file is skipped when the run is started again.
    """

    def __init__(self, path: str | os.PathLike[str], key_fields: tuple[str, ...]) -> None:
        self.path = Path(path)
        self.key_fields = key_fields
        self.records: list[dict[str, Any]] = []
        self._keys: set[tuple[Any, ...]] = set()
        if self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short when a run was killed: redo that job
                    self.records.append(record)
                    self._keys.add(self.key(record))

    def key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        """The identifying values of a record or job."""
        return tuple(record.get(f) for f in self.key_fields)

    def __contains__(self, record: dict[str, Any]) -> bool:
        return self.key(record) in self._keys

    def append(self, record: dict[str, Any]) -> None:
        """Add a record and write it at once, so an interrupted run loses nothing done."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self.records.append(record)
        self._keys.add(self.key(record))


def run_jobs(
    func: Callable[[dict[str, Any]], dict[str, Any]],
    jobs: Iterable[dict[str, Any]],
    *,
    workers: int = 1,
    scheduler: str | None = None,
    initializer: Callable[[], None] | None = None,
    description: str = "jobs",
) -> Iterator[dict[str, Any]]:
    """Run ``func`` on each job and yield the results as they finish.

    Parameters
    ----------
    func : callable
        A picklable, module-level function of one job dict.
    jobs : iterable of dict
        The work.
    workers : int
        Processes of the local pool; 1 runs in this process (after ``initializer``).
    scheduler : str, optional
        Address of a Dask scheduler; the jobs then run on its workers.
    initializer : callable, optional
        Run once in each fresh worker process (e.g. to import heavy modules).
    description : str
        Label of the progress bar.
    """
    jobs = list(jobs)
    if not jobs:
        return
    bar = tqdm(total=len(jobs), desc=description, unit="job", leave=False)
    try:
        if scheduler:
            from distributed import Client
            from distributed import as_completed as dask_completed

            with Client(scheduler) as client:
                if initializer is not None:
                    client.run(initializer)
                futures = client.map(func, jobs, pure=False)
                for future in dask_completed(futures):
                    bar.update()
                    yield future.result()
        elif workers <= 1:
            if initializer is not None:
                initializer()
            for job in jobs:
                result = func(job)
                bar.update()
                yield result
        else:
            # Fresh interpreters ("spawn"): the workers import the heavy stack single-threaded
            # in their initializer instead of inheriting this process's threads.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context,
                                     initializer=initializer) as pool:
                futures = [pool.submit(func, job) for job in jobs]
                for future in as_completed(futures):
                    bar.update()
                    yield future.result()
    finally:
        bar.close()
