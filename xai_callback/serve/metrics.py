"""Prometheus metrics of the server, through `prometheus-client`, with TF Serving's and KServe's names.

- `:tensorflow:serving:request_count` (exposed with the `_total` suffix
  `prometheus-client` gives counters) and `:tensorflow:serving:request_latency`
  (a histogram in microseconds with TF Serving's buckets), as TF Serving's
  monitoring exports them, by `model_name`, `model_version`, `API` (predict,
  explain, infer, status, ...), `entrypoint` (`REST`), `protocol` (tf_serving,
  kserve_v1, vertex, v2) and `status` (the HTTP status code);
- `request_predict_seconds` and `request_explain_seconds`, KServe's model
  server histograms: the model call of a predict request, and an explanation
  by `method`.

Each `Metrics` has its own registry (several servers may run in one process,
as in tests). With `--workers N` the supervisor gives the workers one
`PROMETHEUS_MULTIPROC_DIR`, and `/metrics` adds up every worker's figures
(`prometheus_client.multiprocess`). Health probes are not counted.
"""

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

# TF Serving's request_latency buckets: 10 us * 1.8^i, 33 of them (about 10 us to 2.2 h).
TF_SERVING_BUCKETS = tuple(10 * 1.8 ** i for i in range(33))
KSERVE_BUCKETS = (.005, .01, .025, .05, .075, .1, .25, .5, .75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0)
REQUEST_LABELS = ("model_name", "model_version", "API", "entrypoint", "protocol", "status")
UNCOUNTED = ("health", "metrics")


class Metrics:
    """The server's counters and histograms.

    Example:

    ```python
    metrics = Metrics("churn", version=lambda: 3)
    metrics.request("vertex", "predict", 200, 0.004)
    body, content_type = metrics.exposition()
    ```

    Args:
        model_name: the served model's name (`model_name` label).
        version: `version()` -> the served version now (`model_version` label).
    """

    enabled = True

    def __init__(self, model_name, version):
        self.model_name = model_name
        self.version = version
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(":tensorflow:serving:request_count", "The total number of requests.",
                                 REQUEST_LABELS, registry=self.registry)
        self._latency = Histogram(
            ":tensorflow:serving:request_latency",
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            REQUEST_LABELS, buckets=TF_SERVING_BUCKETS, registry=self.registry)
        self._predict = Histogram("request_predict_seconds", "predict request latency",
                                  ("model_name", "model_version"), buckets=KSERVE_BUCKETS,
                                  registry=self.registry)
        self._explain = Histogram("request_explain_seconds", "explain request latency",
                                  ("model_name", "model_version", "method"), buckets=KSERVE_BUCKETS,
                                  registry=self.registry)
        # labels() costs a lookup and a lock each time: (metric, label values) -> child, and
        # (protocol, api, status, version) -> a request's (counter, histogram).
        self._children = {}

    def _child(self, metric, *labels):
        child = self._children.get((metric, labels))
        if child is None:
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def request(self, protocol, api, status, seconds):
        """Counts one answered request and its wall time."""
        if protocol in UNCOUNTED:
            return
        key = (protocol, api, status, self.version())
        children = self._children.get(key)
        if children is None:
            labels = (self.model_name, str(key[3]), api, "REST", protocol, str(status))
            children = self._children[key] = (self._requests.labels(*labels), self._latency.labels(*labels))
        children[0].inc()
        children[1].observe(seconds * 1e6)

    def model_call(self, seconds):
        """The model call of one predict request (KServe's `request_predict_seconds`)."""
        self._child(self._predict, self.model_name, str(self.version())).observe(seconds)

    def explanation(self, method, seconds):
        """One explanation by `method` (KServe's `request_explain_seconds`)."""
        self._child(self._explain, self.model_name, str(self.version()), method).observe(seconds)

    def exposition(self):
        """`(body bytes, content type)` of the Prometheus text format; every worker's with `--workers N`."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class NoMetrics:
    """`--no-metrics`: the same calls, doing nothing (and no `/metrics` route)."""

    enabled = False

    def request(self, protocol, api, status, seconds):
        pass

    def model_call(self, seconds):
        pass

    def explanation(self, method, seconds):
        pass
