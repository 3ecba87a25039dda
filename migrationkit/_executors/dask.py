"""``DaskRangeExecutor``: range tasks on a Dask cluster, on this machine or on many.

Needs Dask's distributed scheduler (``pip install "migrationkit[distributed]"``). With
no scheduler address it starts a ``LocalCluster`` of worker processes that listens on
127.0.0.1 only (so does its HTTP endpoint, on a free port: the dashboard, if bokeh is
installed). With one (``tcp://host:8786``, or Dask's own
``DASK_SCHEDULER_ADDRESS``) it uses the workers already there: each needs migrationkit
installed and network access to both databases, never the documents from us.

Dask runs a failed task again (``retries``); a task whose worker died is rescheduled on
another worker (up to ``distributed.scheduler.allowed-failures`` times).
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from migrationkit._errors import ServerUnavailableError
from migrationkit._executors.ranges import (
    DEFAULT_RETRIES,
    Part,
    RangeExecutor,
    RangeFailedError,
    RangeTask,
)

# Optional (the "distributed" extra) and only partly annotated: used untyped, so that
# type checking is the same whether or not it is installed.
dask_config: Any = importlib.import_module("dask.config")
distributed: Any = importlib.import_module("distributed")

#: How long to wait for a remote scheduler, and for its first worker.
CONNECT_TIMEOUT_S = 30.0


class DaskRangeExecutor(RangeExecutor):
    """One Dask task per range. ``processes=False`` runs the workers as threads here."""

    name = "dask"
    label = "dask"

    def __init__(
        self,
        workers: int,
        *,
        scheduler: str | None = None,
        retries: int = DEFAULT_RETRIES,
        processes: bool = True,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(workers, retries=retries)
        self.scheduler: str | None = scheduler or dask_config.get("scheduler-address", None)
        self.processes = processes
        self.connect_timeout_s = connect_timeout_s
        self._cluster: Any = None  # a distributed.LocalCluster we started
        self._client: Any = None  # a distributed.Client

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("DaskRangeExecutor is not started; use `async with`")
        return self._client

    async def start(self) -> None:
        try:
            if self.scheduler is None:
                self._cluster = await distributed.LocalCluster(**self._local_cluster_options())
                self._client = await distributed.Client(self._cluster, asynchronous=True)
            else:
                self._client = await distributed.Client(
                    self.scheduler, asynchronous=True, timeout=self.connect_timeout_s
                )
                await self._client.wait_for_workers(1, timeout=self.connect_timeout_s)
                self.workers = len(self._client.scheduler_info()["workers"])
        except (OSError, TimeoutError) as exc:
            await self.close(abort=True)
            raise ServerUnavailableError(
                f"cannot use the Dask scheduler at {self.scheduler}: {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            await self.close(abort=True)
            raise

    def _local_cluster_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "n_workers": self.workers,
            "threads_per_worker": 1,  # one range at a time per worker, like one writer
            "processes": self.processes,
            # The scheduler always serves HTTP (health, metrics; the dashboard if bokeh is
            # installed): on the loopback, on a free port, never on 0.0.0.0:8787.
            "dashboard_address": "127.0.0.1:0",
            "asynchronous": True,
        }
        if self.processes:  # worker processes talk TCP: keep every port on the loopback
            options |= {"host": "127.0.0.1", "scheduler_port": 0}
        return options

    async def run(
        self,
        task: RangeTask,
        job: Any,
        ranges: Sequence[Part],
        on_result: Callable[[Any], None],
    ) -> list[Any]:
        run_id = uuid.uuid4().hex[:8]  # task keys stay unique on a shared cluster
        futures = {
            self.client.submit(
                task,
                job,
                part,
                key=f"migrationkit-range-{part.index}-{run_id}",
                retries=self.retries,
                pure=False,
            ): part
            for part in ranges
        }
        results: list[Any] = []
        try:
            async for future in distributed.as_completed(list(futures)):
                results.append(await _result(future, futures.pop(future)))
                # Forget it on the cluster: a worker lost later need not recompute it.
                future.release()
                on_result(results[-1])
        finally:
            if futures:  # a range failed, or we were cancelled
                await self.client.cancel(list(futures))
        return results

    async def close(self, *, abort: bool = False) -> None:
        # Closing a LocalCluster stops its workers, mid-task or not; tasks running on a
        # remote cluster finish their range (harmless: writes are idempotent upserts).
        client, self._client = self._client, None
        cluster, self._cluster = self._cluster, None
        if client is not None:
            await client.close()
        if cluster is not None:
            await cluster.close()


async def _result(future: Any, part: Part) -> Any:
    try:
        result: Any = await future
    except RangeFailedError:
        raise
    except Exception as exc:  # Dask's own verdicts, e.g. KilledWorker
        raise RangeFailedError(part.index, f"{type(exc).__name__}: {exc}") from exc
    return result
