"""`xai-callback explain DIR --instances FILE`: local explanations from an export.

Prints (or writes) the `:explain` response JSON; optionally a PNG plot.
Exit status: 0 on success; 1 when the export is not explanation-ready; 2 on
usage errors (unreadable instances file, instances that do not fit the
signature, a method or setting the export cannot support); 3 when the
explanation failed for a reason the request did not cause (an internal error:
TensorFlow failed computing it; report it).
"""

import contextlib
import json
import sys
import warnings

from xai_callback.commands.method_flags import add_method_flags, method_options

EXIT_OK, EXIT_EXPORT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# Show a progress bar from this many model rows on (e.g. 64 instances x 51 steps x 3 baselines).
PROGRESS_MIN_ROWS = 5000


def register(subparsers):
    parser = subparsers.add_parser(
        "explain",
        help="compute explanations locally, in Vertex AI's :explain response format",
        description="Runs the export's xai_preprocess and xai_model on the instances and "
                    "computes feature attributions with the method in the export's "
                    "explanation parameters (or --method). Counts may pass Vertex AI's limits "
                    "(e.g. --steps 300). Exit status 0: done; 1: the export is not "
                    "explanation-ready; 2: usage error; 3: internal error (the explanation "
                    "failed for a reason the request did not cause).",
    )
    parser.add_argument("export_dir", help="SavedModel directory (local, gs://, ...)")
    parser.add_argument("--instances", required=True, metavar="FILE",
                        help='JSON lines (one instance per line) or a {"instances": [...]} body, '
                             'in serving_default\'s input format (binary as {"b64": ...})')
    add_method_flags(parser)
    parser.add_argument("--output", metavar="FILE.json", help="write the response here (default: stdout)")
    parser.add_argument("--plot", metavar="FILE.png", help="save a plot of the attributions")
    parser.set_defaults(func=run)
    return parser


def run(args):
    # TensorFlow is imported only when the command runs.
    from xai_callback.errors import ExplanationFailedError, ExportVerificationError
    from xai_callback.explain import load_explainer
    from xai_callback.publish import storage
    from xai_callback.spec.options import CLI_SPELLING

    try:
        instances = read_instances(args.instances)
    except (OSError, ValueError) as e:
        return _fail(f"cannot read instances from {args.instances}: {e}", EXIT_USAGE)
    if not storage.exists(args.export_dir):
        return _fail(f"no export at {args.export_dir}", EXIT_USAGE)
    overrides = method_options(args)
    try:
        explainer = load_explainer(args.export_dir, spelling=CLI_SPELLING)
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("always")
            response = explainer.explain_instances(
                instances, method=args.method, granularity=args.granularity,
                max_rows_per_call=args.max_rows_per_call, progress=_progress_bar(), **overrides)
    except ExportVerificationError as e:
        return _fail(str(e), EXIT_EXPORT_INVALID)
    except ExplanationFailedError as e:
        return _fail(f"internal error: {e}", EXIT_INTERNAL)
    except (ValueError, TypeError) as e:  # InstanceError, SpecError, MethodNotSupportedError
        return _fail(str(e), EXIT_USAGE)
    for warning in caught:
        print(f"xai-callback explain: warning: {warning.message}", file=sys.stderr)
    text = response.to_json(indent=2)
    if args.output:
        storage.write_text(args.output, text + "\n")
    else:
        print(text)
    if args.plot:
        try:
            from xai_callback.explain.plot import plot_explanations
        except ImportError as e:
            return _fail(str(e), EXIT_USAGE)
        plot_explanations(response, args.plot)
    return EXIT_OK


def read_instances(path):
    """Instances from JSON lines or a `{"instances": [...]}` body.

    A bare JSON list is read as JSON lines (one instance), never as a list of
    instances: a one-line file `[1, 2, 3]` is one vector instance.
    """
    from xai_callback.publish import storage

    text = storage.read_text(path)
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict) and "instances" in body:
        return body["instances"]
    instances = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                instances.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"line {number} is not JSON ({e.msg}): {line[:60]!r}") from e
    if not instances:
        raise ValueError("no instances found")
    return instances


def _progress_bar():
    """A `progress(done, total)` callback drawing a Keras Progbar for long runs."""
    from xai_callback._keras import keras_module

    bar = {}

    def progress(done, total):
        if total < PROGRESS_MIN_ROWS:
            return
        if "bar" not in bar:
            bar["bar"] = keras_module().utils.Progbar(total, unit_name="row")
        bar["bar"].update(done)

    return progress


def _fail(message, code):
    print(f"xai-callback explain: {message}", file=sys.stderr)
    return code
