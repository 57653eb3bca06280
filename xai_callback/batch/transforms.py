"""The Beam transforms of `batch-explain`: read instances, split records, global importance."""

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from xai_callback.batch.formats import RowError
from xai_callback.batch.handler import METRICS_NAMESPACE
from xai_callback.batch.importance import ImportanceAccumulator

ERRORS = "errors"


class ReadInstances(beam.PTransform):
    """Files matching `pattern` -> instances; rows that cannot be read -> the `errors` output.

    Returns a `DoOutputsTuple`: `instances` (JSON values as read) and
    `errors` (error records `{"instance", "error": {"status", "message"}}`).

    Args:
        pattern: a file pattern any Beam file system reads (local, `gs://`, `s3://`).
        reader: the `InstanceReader` of the format.
    """

    def __init__(self, pattern, reader):
        super().__init__()
        self.pattern = pattern
        self.reader = reader

    def expand(self, pipeline):
        fmt = self.reader.format
        if fmt == "jsonl":
            lines = pipeline | "ReadJsonLines" >> beam.io.ReadFromText(self.pattern)
            parse = _ParseRows(self.reader, "json_line")
        elif fmt == "csv":
            lines = pipeline | "ReadCsv" >> beam.io.ReadFromTextWithFilename(
                self.pattern, skip_header_lines=1)
            parse = _ParseCsvLines(self.reader)
        else:
            lines = pipeline | "ReadTFRecord" >> beam.io.ReadFromTFRecord(self.pattern)
            parse = _ParseRows(self.reader, "tf_example")
        return lines | "Parse" >> beam.ParDo(parse).with_outputs(ERRORS, main="instances")


class _ParseRows(beam.DoFn):
    """Rows -> instances with `reader.<method>`; rows it cannot read -> `errors`."""

    def __init__(self, reader, method=None):
        self.reader = reader
        self.method = method
        self.unreadable = Metrics.counter(METRICS_NAMESPACE, "unreadable_rows")

    def read(self, row):
        return getattr(self.reader, self.method)(row)

    def process(self, row):
        try:
            instance = self.read(row)
        except RowError as e:
            self.unreadable.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, row_error(e))
            return
        if instance is not None:
            yield instance


class _ParseCsvLines(_ParseRows):
    """`(file name, line)` -> instances, with each file's header read once per worker."""

    def setup(self):
        self.headers = {}

    def read(self, element):
        filename, line = element
        if filename not in self.headers:
            try:
                self.headers[filename] = self.reader.csv_header(_first_line(filename))
            except RowError as e:
                self.headers[filename] = e  # every row of that file goes to the errors output
        header = self.headers[filename]
        if isinstance(header, RowError):
            raise RowError(str(header), line)
        return self.reader.csv_line(header, line)


def _first_line(filename):
    with FileSystems.open(filename) as handle:
        return handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")


def row_error(error):
    return {"instance": error.instance, "error": {"status": "INVALID_ARGUMENT",
                                                  "message": f"cannot read the row: {error}"}}


class SplitRecords(beam.DoFn):
    """RunInference's `PredictionResult`s -> result records, and error records on `errors`."""

    def __init__(self):
        self.explained = Metrics.counter(METRICS_NAMESPACE, "explained_instances")
        self.failed = Metrics.counter(METRICS_NAMESPACE, "failed_instances")

    def process(self, result):
        record = result.inference
        if "error" in record:
            self.failed.inc()
            yield beam.pvalue.TaggedOutput(ERRORS, record)
        else:
            self.explained.inc()
            yield record


class GlobalImportanceFn(beam.CombineFn):
    """Combines result records into the global importance dict (`importance.py`).

    Example:

    ```python
    importance = results | beam.CombineGlobally(GlobalImportanceFn(export="exports/3"))
    ```

    Args:
        **source: recorded under `"source"` in the output (export, method, ...).
    """

    def __init__(self, **source):
        super().__init__()
        self.source = source

    def create_accumulator(self):
        return ImportanceAccumulator()

    def add_input(self, accumulator, record):
        return accumulator.add(record["explanation"])

    def merge_accumulators(self, accumulators):
        accumulators = iter(accumulators)
        merged = next(accumulators)
        for other in accumulators:
            merged.merge(other)
        return merged

    def extract_output(self, accumulator):
        return accumulator.summary(**self.source)
