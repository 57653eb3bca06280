"""`ExplainModelHandler`: RunInference's model handler for explanation-ready exports.

Beam's own `TFModelHandlerNumpy` cannot be used as is: its module imports
`tensorflow_hub`, which needs `pkg_resources` (gone from setuptools >= 81).
This handler is built on Beam's `ModelHandler` base: `load_model` loads the
export once per worker process (RunInference keeps it in Beam's shared model
manager, so the threads of a process share one copy), `run_inference` explains
a batch with `BatchExplainer` (`xai_explain` when the export has it, the Python
explainer otherwise), and the batch sizes go to Beam's `BatchElements`.
"""

from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from xai_callback.batch.explaining import BatchExplainer, shared

METRICS_NAMESPACE = "xai_callback"


class ExplainModelHandler(ModelHandler):
    """Explains batches of instances with an export inside `RunInference`.

    Each `PredictionResult` has the instance as `example` and, as
    `inference`, the record `batch-explain` writes: `{"instance",
    "prediction", "explanation"}`, or `{"instance", "error": {"status",
    "message"}}` for an instance that could not be explained (a bad instance
    never fails the batch nor the job).

    Example:

    ```python
    import apache_beam as beam
    from apache_beam.ml.inference.base import RunInference

    handler = ExplainModelHandler("gs://bucket/model/3", max_batch_size=64)
    with beam.Pipeline() as p:
        (p | beam.Create([{"x": [1.0, 2.0, 3.0]}])
           | RunInference(handler)
           | beam.Map(lambda result: print(result.inference)))
    ```

    Args:
        export_dir: the export (any path TensorFlow reads: local, `gs://`).
        min_batch_size, max_batch_size: Beam's batching bounds (instances per
            `run_inference` call). Defaults to None: Beam's.
        shared_token: the token of a `BatchExplainer` the launcher loaded
            (`explaining.share`): a worker in the launcher's process uses it
            instead of loading the export again. Defaults to None.
        **explain_options: `BatchExplainer`'s options (`method`,
            `granularity`, `route`, `exclude_fields`, `max_rows_per_call`,
            `step_count`, ...), checked here.
    """

    def __init__(self, export_dir, *, min_batch_size=None, max_batch_size=None, shared_token=None,
                 **explain_options):
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        BatchExplainer(export_dir, **explain_options)  # refuses unknown options now, not on a worker
        self.export_dir = str(export_dir)
        self.explain_options = dict(explain_options)
        self.shared_token = shared_token

    def load_model(self):
        return shared(self.shared_token) or BatchExplainer(self.export_dir, **self.explain_options).load()

    def run_inference(self, batch, model, inference_args=None):
        return [PredictionResult(record["instance"], record) for record in model.explain(batch)]

    def get_metrics_namespace(self):
        return METRICS_NAMESPACE
