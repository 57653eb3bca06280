"""`batch_explain`: explanations of whole files of instances on Apache Beam.

Files of instances in (JSON Lines, CSV with a header, TFRecord of
`tf.Example`), files of explanations out in Vertex AI's batch prediction
layout, on any Beam runner (DirectRunner here; Dataflow, Flink, Spark: see
docs/batch.md):

| file | content |
|---|---|
| `prediction.results-SSSSS-of-NNNNN` | one JSON line per instance: `instance`, `prediction`, `explanation` (the JSON of `xai_callback.explain`, tokens included) |
| `prediction.errors_stats-SSSSS-of-NNNNN` | one JSON line per instance that failed: `instance` and `error` `{"status", "message"}` |
| `importance.json` | global feature importance (`xai_callback.batch.importance`) |
| `importance.png` | its bar chart (`plot=True`, needs the `plot` extra) |

Before the pipeline starts, the export is loaded and validated, the input
format is checked against its instance signature, and the first rows of the
first file are explained: an export that is not explanation-ready, settings
it cannot explain, a format it cannot take or a pattern that matches nothing
are refused there. After that, a bad row never fails the job: it goes to the
errors output with the reason.
"""

import dataclasses
import json

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from xai_callback.arguments import check_bool, check_int, check_str
from xai_callback.errors import SpecError, ExportVerificationError
from xai_callback.batch.explaining import BatchExplainer, share, unshare
from xai_callback.batch.formats import InstanceReader, RowError, describe_inputs, input_format
from xai_callback.batch.handler import METRICS_NAMESPACE, ExplainModelHandler
from xai_callback.batch.importance import plot_importance
from xai_callback.batch.transforms import ERRORS, GlobalImportanceFn, ReadInstances, SplitRecords

RESULTS_PREFIX = "prediction.results"
ERRORS_PREFIX = "prediction.errors_stats"
IMPORTANCE_FILE = "importance.json"
PLOT_FILE = "importance.png"
PREFLIGHT_ROWS = 4
DEFAULT_BATCH_SIZE = 32
LOCAL_RUNNER = "FnApiRunner"  # what the DirectRunner runs batch pipelines on (see _pipeline_options)


@dataclasses.dataclass
class BatchResult:
    """What a `batch_explain` run wrote.

    Attributes:
        output_dir: where the files are.
        explained: instances explained (lines of the results files).
        failed: instances in the errors files (unreadable or unexplainable).
        route: "signature" (`xai_explain`) or "python" (the Python explainer).
        importance: the global importance dict, or None.
        files: `{"results", "errors", "importance", "plot"}` patterns/paths written.
    """

    output_dir: str
    explained: int
    failed: int
    route: str
    importance: dict = None
    files: dict = dataclasses.field(default_factory=dict)


def batch_explain(export_dir, input_pattern, output_dir, *, input_format_name=None, method=None,
                  granularity="raw", route="auto", exclude_fields=(), batch_size=DEFAULT_BATCH_SIZE,
                  num_shards=0, importance=True, plot=False, overwrite=False, validate=True,
                  max_rows_per_call=None, pipeline_options=None, **overrides):
    """Explains every instance of the files matching `input_pattern` with a Beam pipeline.

    Example:

    ```python
    from xai_callback.batch import batch_explain

    result = batch_explain("exports/churn/3", "data/day-*.jsonl", "out/day",
                           pipeline_options=["--direct_num_workers=2",
                                             "--direct_running_mode=multi_processing"])
    print(result.explained, result.failed, result.importance["features"])
    ```

    Args:
        export_dir: the export (local or `gs://`; read by TensorFlow).
        input_pattern: files of instances (any Beam file system; globs allowed).
        output_dir: where the results, errors and importance files go.
        input_format_name: "jsonl", "csv" or "tfrecord"; None: from the extension.
        method, granularity, **overrides: as `xai_callback.explain` takes
            them (`step_count`, `path_count`, `top_k`, `output_indices`, ...).
        route: "auto" (`xai_explain` when the export has it and the stored
            settings are used), "signature" or "python".
        exclude_fields: instance keys kept in the output but not sent to the
            model (a label column, an id).
        batch_size: instances per model call (Beam's `max_batch_size`; a
            batch never spans bundles, so some are smaller). Defaults to 32.
        num_shards: results files (0: as the runner decides).
        importance: write `importance.json`. Defaults to True.
        plot: also write `importance.png` (the `plot` extra). Defaults to False.
        overwrite: replace results of an earlier run in `output_dir`
            (refused otherwise, as stale shards would mix in). Defaults to False.
        validate: validate the export before starting. Defaults to True.
        max_rows_per_call: model rows per call of the Python explainer.
        pipeline_options: Beam options: a `PipelineOptions`, a list of
            command-line flags (`["--runner=DataflowRunner", ...]`) or a dict.
            Defaults to None: the DirectRunner, in this process.

    Returns:
        `BatchResult`.

    Raises:
        ValueError / TypeError: a bad argument, a pattern that matches no file, a
            format the export cannot take, settings it cannot explain.
        ExportVerificationError: the export is not explanation-ready.
    """
    for name, value in (("export_dir", export_dir), ("input_pattern", input_pattern),
                        ("output_dir", output_dir)):
        check_str(name, value)
    check_int("batch_size", batch_size, minimum=1)
    check_int("num_shards", num_shards, minimum=0)
    for name, value in (("importance", importance), ("plot", plot), ("overwrite", overwrite),
                        ("validate", validate)):
        check_bool(name, value)
    if plot and not importance:
        raise ValueError("plot=True draws the importance: it needs importance=True.")
    fmt = input_format(input_pattern, input_format_name)
    options = _pipeline_options(pipeline_options)
    files = _matching_files(input_pattern)
    _check_output_dir(output_dir, overwrite)

    settings = dict(method=method, granularity=granularity, route=route, exclude_fields=exclude_fields,
                    max_rows_per_call=max_rows_per_call, **overrides)
    explainer = BatchExplainer(export_dir, validate=validate, **settings).load()
    reader = InstanceReader(fmt, describe_inputs(explainer.instance_specs),
                            explainer.instance_signature, exclude_fields)
    _preflight(explainer, reader, files[0])

    token = share(explainer)
    try:
        return _run(input_pattern, output_dir, reader, explainer.route, options,
                    ExplainModelHandler(export_dir, min_batch_size=batch_size, max_batch_size=batch_size,
                                        shared_token=token, **settings),
                    num_shards=num_shards, importance=importance, plot=plot,
                    source={"export": export_dir, "input": input_pattern, "route": explainer.route,
                            "method": method, "granularity": granularity, **explainer.overrides})
    finally:
        unshare(token)


def _run(input_pattern, output_dir, reader, route, options, handler, *, num_shards, importance, plot,
         source):
    """Builds and runs the pipeline; reads back the importance and draws it."""
    out = {"results": _join(output_dir, RESULTS_PREFIX) + "-*", "errors": _join(output_dir, ERRORS_PREFIX) + "-*"}
    pipeline = beam.Pipeline(options=options)
    read = pipeline | "ReadInstances" >> ReadInstances(input_pattern, reader)
    records = (read.instances
               | "Reshuffle" >> beam.Reshuffle()
               | "Explain" >> RunInference(handler)
               | "Split" >> beam.ParDo(SplitRecords()).with_outputs(ERRORS, main="results"))
    (records.results
     | "ResultLines" >> beam.Map(json.dumps)
     | "WriteResults" >> beam.io.WriteToText(_join(output_dir, RESULTS_PREFIX), num_shards=num_shards))
    ((read[ERRORS], records[ERRORS])
     | "AllErrors" >> beam.Flatten()
     | "ErrorLines" >> beam.Map(json.dumps)
     | "WriteErrors" >> beam.io.WriteToText(_join(output_dir, ERRORS_PREFIX)))
    if importance:
        out["importance"] = _join(output_dir, IMPORTANCE_FILE)
        (records.results
         | "Importance" >> beam.CombineGlobally(GlobalImportanceFn(**source))
         | "ImportanceJson" >> beam.Map(lambda summary: json.dumps(summary, indent=1))
         | "WriteImportance" >> beam.io.WriteToText(out["importance"], num_shards=1, shard_name_template=""))
    run = pipeline.run()
    run.wait_until_finish()
    summary = None
    if importance:
        with FileSystems.open(out["importance"]) as handle:
            summary = json.loads(handle.read().decode("utf-8"))
        if plot:
            out["plot"] = _join(output_dir, PLOT_FILE)
            with FileSystems.create(out["plot"]) as handle:
                handle.write(plot_importance(summary))
    counters = _counters(run)
    return BatchResult(output_dir, explained=counters.get("explained_instances", 0),
                       failed=counters.get("failed_instances", 0) + counters.get("unreadable_rows", 0),
                       route=route, importance=summary, files=out)


def _pipeline_options(value):
    """Beam options; the DirectRunner (the default) runs as its batch engine, the FnApiRunner.

    Beam's DirectRunner first tries the Prism runner, whose binary it downloads
    at run time; for a batch pipeline it otherwise runs the FnApiRunner, which
    takes `--direct_num_workers` and `--direct_running_mode` alike. Asking for
    that engine directly keeps the run local and offline.
    """
    if value is None:
        options = PipelineOptions([])
    elif isinstance(value, PipelineOptions):
        options = value
    elif isinstance(value, dict):
        options = PipelineOptions.from_dictionary(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        options = PipelineOptions(list(value))
        # Beam drops flags it does not know with a log line; a misspelt flag
        # (ours or Beam's) must not pass silently.
        unknown = sorted(set(options.get_all_options(retain_unknown_options=True))
                         - set(options.get_all_options()))
        if unknown:
            raise ValueError(f"Unknown pipeline options {['--' + name for name in unknown]} in "
                             f"{list(value)}: neither batch-explain's nor Beam's (docs/batch.md lists "
                             "the options of each runner).")
    else:
        raise TypeError("pipeline_options must be a PipelineOptions, a list of flags such as "
                        f"['--runner=DirectRunner'] or a dict; received {value!r}.")
    standard = options.view_as(StandardOptions)
    if standard.runner in (None, "DirectRunner"):
        standard.runner = LOCAL_RUNNER
    return options


def _matching_files(pattern):
    """The files `pattern` matches, sorted; refuses a pattern that matches none."""
    try:
        (match,) = FileSystems.match([pattern])
    except Exception as e:  # noqa: BLE001 - Beam raises BeamIOError and others
        raise ValueError(f"Cannot list input {pattern!r}: {e}") from None
    files = sorted(m.path for m in match.metadata_list)
    if not files:
        raise ValueError(f"No input file matches {pattern!r}.")
    return files


def _check_output_dir(output_dir, overwrite):
    """Refuses an earlier run's results (stale shards would mix in), or deletes them."""
    old = []
    for prefix in (RESULTS_PREFIX, ERRORS_PREFIX, IMPORTANCE_FILE, PLOT_FILE):
        pattern = _join(output_dir, prefix) + ("*" if prefix.startswith("prediction") else "")
        old += [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    if old and not overwrite:
        raise ValueError(f"output_dir {output_dir!r} holds the results of an earlier run "
                         f"({sorted(old)[0]}, ...); choose a new folder or pass overwrite=True "
                         "(--overwrite).")
    if old:
        FileSystems.delete(old)


def _preflight(explainer, reader, first_file):
    """Explains the first rows of the first file; raises what would fail every row.

    Rows that cannot be read or explained are not refused here (they go to the
    errors output); an export that is not explanation-ready and settings it
    cannot explain (`SpecError`, e.g. a method it does not support) are.
    """
    for instance in _first_instances(reader, first_file):
        try:
            explainer.explain_strictly([instance])
        except (ExportVerificationError, SpecError):
            raise
        except Exception:  # noqa: BLE001 - that row's own problem
            continue


def _first_instances(reader, path):
    out = []
    if reader.format == "tfrecord":
        import tensorflow as tf

        compression = "GZIP" if path.endswith((".gz", ".gzip")) else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression).take(PREFLIGHT_ROWS):
            out.append(reader.tf_example(record.numpy()))
        return out
    with FileSystems.open(path) as handle:
        header = None
        for raw in handle:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                if reader.format == "csv" and header is None:
                    header = reader.csv_header(line)
                    continue
                instance = reader.json_line(line) if reader.format == "jsonl" else reader.csv_line(header, line)
            except RowError:
                if header is None and reader.format == "csv":
                    return out  # a bad header: every row of the file goes to the errors output
                continue
            if instance is not None:
                out.append(instance)
            if len(out) >= PREFLIGHT_ROWS:
                break
    return out


def _counters(run):
    try:
        found = run.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))["counters"]
    except Exception:  # noqa: BLE001 - a runner without metrics
        return {}
    totals = {}
    for counter in found:
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (value or 0)
    return totals


def _join(folder, name):
    return FileSystems.join(folder, name)
