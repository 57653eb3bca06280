"""Model calls off the event loop: a bounded number in flight, concurrent predicts merged.

Every model call (a signature call or an explanation) runs in a worker thread
under one `anyio.CapacityLimiter(max_in_flight)`, so the event loop keeps
reading requests while TensorFlow works, and at most `max_in_flight` calls
compete for the cores. With batching on, predict requests for the same model
version, signature and per-instance shapes queue up while a call for them is
running and go together into the next call (up to `max_batch_rows` rows):
one signature call costs about the same for 1 row and for hundreds, so under
load this spreads the per-call cost over many requests, and alone a request
waits for nothing. A merged call that fails is retried request by request, so
one bad request never fails the others.
"""

import asyncio
import collections
import threading

import anyio
import anyio.to_thread
import numpy as np
import tensorflow as tf

from xai_callback.errors import short_message
from xai_callback.serve.codec import rows_of
from xai_callback.serve.errors import ServeError

# Merged calls of one (version, signature, shapes) that may run at once; the
# next requests wait for one of them to finish and are merged meanwhile.
BATCHES_IN_FLIGHT = 1

_Request = collections.namedtuple("_Request", "tensors rows future")
# Held by calls that may trace TensorFlow functions (see `first_call_alone`).
_TRACING = threading.Lock()


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
    runner = ModelRunner(max_in_flight=4)
    outputs = await runner.predict(model, "serving_default", tensors)
    response = await runner.run(model.explainer.explain_instances, instances)
    ```

    Args:
        max_in_flight: model calls running at once.
        batching: merge concurrent predict requests. Defaults to True.
        max_batch_rows: rows of one merged call. Defaults to 1024.
    """

    def __init__(self, max_in_flight, batching=True, max_batch_rows=1024):
        self.limiter = anyio.CapacityLimiter(max_in_flight)
        self.batching = batching
        self.max_batch_rows = max_batch_rows
        self._queues = {}
        self._drains = set()  # running drain tasks (the loop keeps only weak references)

    async def run(self, fn, *args):
        """`fn(*args)` in a worker thread, within the in-flight bound."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)

    async def predict(self, model, signature_name, tensors):
        """`{key: np.ndarray}` outputs of one signature call on `tensors`.

        Raises:
            ServeError: 400 for inputs the model rejects (TF InvalidArgument).
        """
        rows = rows_of(tensors)
        if not self.batching or not rows:
            (result,) = await self.run(call_signature, model, signature_name, [tensors])
            return _unwrap(result)
        key = (id(model), signature_name,
               tuple((k, t.dtype.name, tuple(t.shape[1:])) for k, t in sorted(tensors.items())))
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(model, signature_name)
        future = asyncio.get_running_loop().create_future()
        queue.pending.append(_Request(tensors, rows, future))
        if queue.running < BATCHES_IN_FLIGHT:
            queue.running += 1
            task = asyncio.get_running_loop().create_task(self._drain(key, queue))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        return _unwrap(await future)

    async def _drain(self, key, queue):
        try:
            while queue.pending:
                batch, total = [], 0
                while queue.pending and (not batch or total + queue.pending[0].rows <= self.max_batch_rows):
                    request = queue.pending.popleft()
                    batch.append(request)
                    total += request.rows
                try:
                    results = await self.run(call_signature, queue.model, queue.signature_name,
                                             [r.tensors for r in batch])
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


def first_call_alone(model, key, fn):
    """`fn()`, alone among first calls if no call with `key` succeeded on `model` yet.

    The first explanation with given settings traces TensorFlow functions
    (the explainer's chunk function and the gradient of the model's
    signature); TF builds those gradient functions without a lock, so two
    threads tracing at once can fail ("'NoneType' object is not iterable").
    Later calls with the same settings reuse the traces and run in parallel.
    """
    if key in model.traced_calls:
        return fn()
    with _TRACING:
        result = fn()
        model.traced_calls.add(key)
    return result


def call_signature(model, signature_name, parts):
    """Runs the signature on the parts merged along axis 0; one result (outputs
    or the exception) per part. Falls back to one call per part when the
    merged call fails or its outputs are not one row per input row."""
    fn = model.signatures[signature_name]
    if len(parts) == 1:
        return [_attempt(fn, parts[0])]
    sizes = [rows_of(p) for p in parts]
    merged = {key: tf.concat([p[key] for p in parts], axis=0) for key in parts[0]}
    outputs = _attempt(fn, merged)
    total = sum(sizes)
    if isinstance(outputs, Exception) or any(
            v.ndim == 0 or v.shape[0] != total for v in outputs.values()):
        return [_attempt(fn, p) for p in parts]
    bounds = np.cumsum([0] + sizes)
    return [{key: value[a:b] for key, value in outputs.items()}
            for a, b in zip(bounds[:-1], bounds[1:])]


def _attempt(fn, tensors):
    try:
        return {key: value.numpy() for key, value in fn(**tensors).items()}
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

