"""Model calls: fast ones on the event loop, slow ones in threads (bounded), concurrent predicts merged.

Explanations, and signature calls not known to be fast, run in a pool of
`max_in_flight` worker threads, so the event loop keeps reading requests
while TensorFlow works, and at most `max_in_flight` calls compete for the
cores (the others wait in the pool's queue). A signature whose recent calls all took less than
`inline_ms` is called on the event loop itself: handing a call to a thread
and back costs more CPU than such a call (about 0.2 ms of Python per hop,
measured in benchmarks/bench_serve.py), and the loop is blocked no longer
than the call.

With batching on, predict requests for the same model version, signature and
per-instance shapes queue up while a call for them is running (or, for calls
on the loop, while the loop reads the requests that arrived together) and go
together into the next call (up to `max_batch_rows` rows): one signature call
costs about the same for 1 row and for hundreds, so under load this spreads
the per-call cost over many requests, and alone a request waits for nothing.
A merged call that fails is retried request by request, so one bad request
never fails the others.
"""

import asyncio
import collections
import threading
import time

import concurrent.futures

import numpy as np
import tensorflow as tf

from xai_callback.errors import short_message
from xai_callback.serve.codec import rows_of
from xai_callback.serve.errors import ServeError

# Merged calls of one (version, signature, shapes) that may run at once; the
# next requests wait for one of them to finish and are merged meanwhile.
BATCHES_IN_FLIGHT = 1
# Recent calls remembered per signature (see `CallTimes`).
TIMED_CALLS = 16
# Loop turns a merged call on the loop waits first, so that the requests read
# from the sockets in the same turn (decoded one turn later) join it.
GATHER_TURNS = 2

_Request = collections.namedtuple("_Request", "arrays rows future")


class CallTimes:
    """Recent wall times of one signature's calls: which calls are fast enough for the event loop.

    A batch of `rows` is called on the loop when one of the last calls with
    at least as many rows took less than the limit. Only fast evidence
    counts: threads waiting for the GIL and a busy machine only ever make a
    call look slower, never faster, and a call bigger than any fast one seen
    runs in a thread (and is timed there).
    """

    def __init__(self):
        self._calls = collections.deque(maxlen=TIMED_CALLS)  # (seconds, rows)
        self._lock = threading.Lock()  # worker threads add while the loop reads

    def add(self, seconds, rows):
        with self._lock:
            self._calls.append((seconds, rows))

    def fast(self, rows, limit):
        """Whether a call of `rows` rows is expected to take less than `limit` seconds."""
        with self._lock:
            return any(s < limit and r >= rows for s, r in self._calls)


class _Queue:
    def __init__(self, model, signature_name):
        self.model = model
        self.signature_name = signature_name
        self.pending = collections.deque()
        self.running = 0


class ModelRunner:
    """Runs signature calls and explanations in worker threads.

    Example:

    ```python
    runner = ModelRunner(max_in_flight=4, inline_ms=2.0)
    outputs = await runner.predict(model, "serving_default", arrays)
    response = await runner.run(model.explainer.explain_instances, instances)
    ```

    Args:
        max_in_flight: model calls running at once.
        batching: merge concurrent predict requests. Defaults to True.
        max_batch_rows: rows of one merged call. Defaults to 1024.
        inline_ms: signatures whose recent calls took less than this many
            milliseconds are called on the event loop. Defaults to 0: always
            in threads.
    """

    def __init__(self, max_in_flight, batching=True, max_batch_rows=1024, inline_ms=0.0):
        # A plain executor: a third of the CPU of anyio.to_thread per call.
        self.executor = concurrent.futures.ThreadPoolExecutor(
            max_in_flight, thread_name_prefix="xai-serve-call")
        self.batching = batching
        self.max_batch_rows = max_batch_rows
        self.inline_seconds = inline_ms / 1e3
        self._queues = {}
        self._drains = set()  # running drain tasks (the loop keeps only weak references)

    async def run(self, fn, *args):
        """`fn(*args)` in a worker thread, within the in-flight bound."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self):
        """Lets the worker threads end once their calls are done."""
        self.executor.shutdown(wait=False)

    async def predict(self, model, signature_name, arrays):
        """`{key: np.ndarray}` outputs of one signature call on `arrays` (`{key: np.ndarray}`).

        Raises:
            ServeError: 400 for inputs the model rejects (TF InvalidArgument).
        """
        rows = rows_of(arrays)
        if not self.batching or not rows:
            if self.inline(model, signature_name, rows):
                (result,) = call_signature(model, signature_name, [arrays])
            else:
                (result,) = await self.run(call_signature, model, signature_name, [arrays])
            return _unwrap(result)
        key = (id(model), signature_name,
               tuple((k, a.dtype.str, a.shape[1:]) for k, a in sorted(arrays.items())))
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(model, signature_name)
        future = asyncio.get_running_loop().create_future()
        queue.pending.append(_Request(arrays, rows, future))
        if queue.running < BATCHES_IN_FLIGHT:
            queue.running += 1
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        return _unwrap(await future)

    def inline(self, model, signature_name, rows=1):
        """Whether to call the signature on `rows` rows on the event loop (like calls were fast)."""
        times = model.call_times.get(signature_name)
        return times is not None and times.fast(rows or 1, self.inline_seconds)

    async def _drain(self, key, queue):
        try:
            while queue.pending:
                if self.inline(queue.model, queue.signature_name):
                    for _ in range(GATHER_TURNS):
                        await asyncio.sleep(0)
                batch, total = [], 0
                while queue.pending and (not batch or total + queue.pending[0].rows <= self.max_batch_rows):
                    request = queue.pending.popleft()
                    batch.append(request)
                    total += request.rows
                parts = [r.arrays for r in batch]
                inline = self.inline(queue.model, queue.signature_name, total)
                try:
                    if inline:
                        results = call_signature(queue.model, queue.signature_name, parts)
                    else:
                        results = await self.run(call_signature, queue.model, queue.signature_name, parts)
                except BaseException as e:  # cancelled at shutdown, or a bug: fail this batch only
                    results = [e] * len(batch)
                    if isinstance(e, (asyncio.CancelledError, KeyboardInterrupt, SystemExit)):
                        _settle(batch, results)
                        raise
                _settle(batch, results)
        finally:
            queue.running -= 1
            if not queue.running and not queue.pending:
                self._queues.pop(key, None)


def call_signature(model, signature_name, parts):
    """Runs the signature on the parts (`{key: np.ndarray}`) merged along
    axis 0; one result (outputs or the exception) per part. Falls back to one
    call per part when the merged call fails or its outputs are not one row
    per input row. Merging numpy arrays and converting once per call costs a
    fraction of converting each request's arrays and `tf.concat`."""
    fn = model.signatures[signature_name]
    if len(parts) == 1:
        return [_timed_attempt(model, signature_name, fn, parts[0])]
    sizes = [rows_of(p) for p in parts]
    merged = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    outputs = _timed_attempt(model, signature_name, fn, merged)
    total = sum(sizes)
    if isinstance(outputs, Exception) or any(
            v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
        return [_attempt(fn, p) for p in parts]
    bounds = np.cumsum([0] + sizes)
    return [{key: value[a:b] for key, value in outputs.items()}
            for a, b in zip(bounds[:-1], bounds[1:])]


def _timed_attempt(model, signature_name, fn, arrays):
    """`_attempt`, its wall time kept in `model.call_times` when it succeeds."""
    start = time.perf_counter()
    result = _attempt(fn, arrays)
    if not isinstance(result, Exception):
        times = model.call_times.get(signature_name)
        if times is None:
            times = model.call_times.setdefault(signature_name, CallTimes())
        times.add(time.perf_counter() - start, rows_of(arrays) or 1)
    return result


def _attempt(fn, arrays):
    try:
        outputs = fn(**{key: tf.constant(value) for key, value in arrays.items()})
        return {key: value.numpy() for key, value in outputs.items()}
    except Exception as e:  # noqa: BLE001 - returned to the one request it belongs to
        return e


def _settle(batch, results):
    for request, result in zip(batch, results):
        if not request.future.done():
            request.future.set_result(result)


def _unwrap(result):
    if isinstance(result, BaseException):
        error = model_error(result)
        if error is result:
            raise result
        raise error from result
    return result


def model_error(error):
    """A TensorFlow error of a model call as the `ServeError` to answer.

    Invalid inputs (e.g. a CSV line the model cannot parse) are the client's
    400; anything else is the server's 500, with TensorFlow's first message
    line and no traceback.
    """
    if isinstance(error, ServeError):
        return error
    if isinstance(error, tf.errors.InvalidArgumentError):
        return ServeError(400, "The model rejected the input: " + short_message(error))
    if isinstance(error, tf.errors.OpError):
        return ServeError(500, "The model failed: " + short_message(error))
    return error

