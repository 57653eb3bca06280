"""Input files -> instances, as `xai-callback explain --instances` takes them (no Beam here).

Three formats, chosen from the file name or given:

| format | one instance is | the instance written beside its explanation |
|---|---|---|
| `jsonl` | one line of JSON (TF Serving row format: a dict by input name, or a bare value for one input) | the line's JSON |
| `csv` | one line after a header naming the inputs (each file has its header; a cell holds no line break); cells typed by the input's dtype (a JSON list in a cell for a vector input) | `{column: typed value}` |
| `tfrecord` | one serialized `tf.Example`, for exports whose instance signature parses them (one string input of shape `[None]`, e.g. `xai_callback.parsing_receiver`) | `{"b64": ...}` |

Each function raises `RowError` for a row it cannot read: the pipeline writes that
row to the errors output and goes on.
"""

import base64
import csv
import json
import os

FORMATS = ("jsonl", "csv", "tfrecord")
EXTENSIONS = {
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".csv": "csv",
    ".tfrecord": "tfrecord", ".tfrecords": "tfrecord", ".tfr": "tfrecord",
}
COMPRESSIONS = (".gz", ".gzip", ".bz2", ".zst", ".deflate")
# dtype names (tf.DType.name) read from a CSV cell with int() / float().
INTEGER_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")


class RowError(ValueError):
    """A row that cannot be read as an instance; `instance` is what was read (for the errors output)."""

    def __init__(self, message, instance):
        super().__init__(message)
        self.instance = instance


def input_format(pattern, given=None):
    """The format of the files `pattern` matches: `given`, else from the extension.

    Raises:
        ValueError: an unknown `given`, or an extension that names no format.
    """
    if given is not None:
        if given not in FORMATS:
            raise ValueError(f"input_format={given!r} is not a format; use one of {list(FORMATS)}.")
        return given
    name = str(pattern).lower()
    for compression in COMPRESSIONS:
        name = name.removesuffix(compression)
    found = EXTENSIONS.get(os.path.splitext(name)[1])
    if found is None:
        raise ValueError(
            f"Cannot tell the format of input {pattern!r} from its extension (known: "
            f"{sorted(EXTENSIONS)}); pass input_format= (--input-format) one of {list(FORMATS)}.")
    return found


class InstanceReader:
    """Reads rows of one format into instances for an export's instance signature.

    Example:

    ```python
    reader = InstanceReader("csv", {"Age": ("int64", [None, 1]), "Type": ("string", [None, 1])})
    header = reader.csv_header("Age,Type")
    reader.csv_line(header, "3,Cat")   # {"Age": 3, "Type": "Cat"}
    ```

    Args:
        input_format: one of `FORMATS`.
        inputs: `{input key: (dtype name, shape list)}` of the instance
            signature (plain data, so the reader pickles to Beam workers).
        signature_name: the instance signature, for messages.
        exclude_fields: keys kept in the written instance but not sent to the
            model (e.g. a label column), as Vertex's `excludedFields`.

    Raises:
        ValueError: `tfrecord` for an export that does not parse `tf.Example`.
    """

    def __init__(self, input_format, inputs, signature_name="serving_default", exclude_fields=()):
        self.format = input_format
        self.inputs = dict(inputs)
        self.signature_name = signature_name
        self.exclude_fields = tuple(exclude_fields or ())
        if input_format == "tfrecord":
            self.example_key = tf_example_input(self.inputs, signature_name)

    def json_line(self, line):
        """One JSON Lines row -> its instance (None for a blank line)."""
        line = _text(line)
        if not line.strip():
            return None
        try:
            return json.loads(line)
        except json.JSONDecodeError as e:
            raise RowError(f"the line is not JSON ({e.msg} at column {e.colno}): {line[:80]!r}",
                           line) from None

    def csv_header(self, line):
        """A CSV header line -> its column names.

        Raises:
            RowError: the columns are not the signature's inputs (plus
                `exclude_fields`): every row of that file would fail.
        """
        header = [name.strip() for name in next(csv.reader([_text(line)]), [])]
        unknown = sorted(set(header) - set(self.inputs) - set(self.exclude_fields))
        missing = sorted(set(self.inputs) - set(header))
        if unknown or missing:
            raise RowError(
                f"the CSV header {header} does not name the inputs of '{self.signature_name}' "
                f"{sorted(self.inputs)}"
                + (f"; unknown columns {unknown} (keep them out of the model with "
                   "exclude_fields / --exclude-fields)" if unknown else "")
                + (f"; missing {missing}" if missing else ""), line)
        return header

    def csv_line(self, header, line):
        """One CSV row (a line after the header) -> `{column: typed value}` (None for a blank line)."""
        line = _text(line)
        if not line.strip():
            return None
        cells = next(csv.reader([line]), [])
        if len(cells) != len(header):
            raise RowError(f"the row has {len(cells)} cells, the header {len(header)} "
                           f"({header})", line)
        raw = dict(zip(header, cells))
        try:
            return {key: self._cell(key, value) for key, value in raw.items()}
        except RowError as e:
            raise RowError(str(e), raw) from None

    def tf_example(self, record):
        """A serialized `tf.Example` -> `{"b64": ...}` (fed to the export's parsing input)."""
        return {"b64": base64.b64encode(bytes(record)).decode("ascii")}

    def _cell(self, key, value):
        if key in self.exclude_fields and key not in self.inputs:
            return value
        dtype, shape = self.inputs[key]
        text = value.strip()
        try:
            if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
                return json.loads(text)  # a vector or tensor input: a JSON list in the cell
            if dtype == "string":
                return value
            if dtype == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError("not true/false/1/0")
                return text.lower() in ("true", "1")
            if dtype in INTEGER_DTYPES:
                return int(text)
            if dtype in FLOAT_DTYPES:
                return float(text)
        except ValueError as e:
            raise RowError(f"column '{key}': {value!r} is not a {dtype} value ({e})", None) from None
        return value


def tf_example_input(inputs, signature_name="serving_default"):
    """The one string input of shape `[None]` that takes serialized `tf.Example`s.

    Raises:
        ValueError: the signature takes something else (then TFRecord input
            cannot be fed to it; JSON Lines or CSV can).
    """
    keys = [k for k, (dtype, shape) in inputs.items() if dtype == "string" and len(shape) == 1]
    if len(inputs) != 1 or len(keys) != 1:
        described = {k: f"{dtype}{shape}" for k, (dtype, shape) in sorted(inputs.items())}
        raise ValueError(
            f"TFRecord input needs an export whose '{signature_name}' parses serialized "
            f"tf.Example (one string input of shape [None], as xai_callback.parsing_receiver "
            f"writes); this export's '{signature_name}' takes {described}. Use JSON Lines or CSV "
            "input instead.")
    return keys[0]


def describe_inputs(specs):
    """`{key: tf.TensorSpec}` -> `{key: (dtype name, shape list)}` (plain, picklable)."""
    return {key: (spec.dtype.name, spec.shape.as_list()) for key, spec in specs.items()}


def _text(line):
    return line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
