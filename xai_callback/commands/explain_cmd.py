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

from xai_callback.spec.methods import METHOD_NAMES

EXIT_OK, EXIT_EXPORT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
# Show a progress bar from this many model rows on (e.g. 64 instances x 51 steps x 3 baselines).
PROGRESS_MIN_ROWS = 5000
METHODS = tuple(METHOD_NAMES)  # the registry, read without TensorFlow
GRANULARITIES = ("raw", "encoded")  # xai_callback.explain.granularity (imports TF)
# Flag -> the option it sets (`xai_callback.spec.options.OPTIONS` spells them back).
METHOD_FLAGS = {"steps": "step_count", "paths": "path_count", "noise_sigma": "noise_sigma",
                "noisy_sample_count": "noisy_sample_count", "max_blur_sigma": "max_blur_sigma",
                "top_k": "top_k"}


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
    parser.add_argument("--method", choices=METHODS,
                        help="attribution method (default: the export's parameters); smoothgrad "
                             "needs --noise-sigma, blur-ig --max-blur-sigma, xrai the [image] "
                             "extra")
    parser.add_argument("--granularity", choices=GRANULARITIES, default="raw",
                        help="raw (default): one attribution per raw feature, token or group "
                             "(one-hot slots and embedding dimensions summed); encoded: one per "
                             "element of each explained tensor, as Vertex AI returns them")
    parser.add_argument("--steps", type=int,
                        help="stepCount of integrated gradients, SmoothGrad, blur IG and XRAI")
    parser.add_argument("--paths", type=int, help="pathCount of sampled Shapley")
    parser.add_argument("--noise-sigma", type=float,
                        help="SmoothGrad: standard deviation of the noise added to every "
                             "feature (noiseSigma)")
    parser.add_argument("--noisy-sample-count", type=int,
                        help="SmoothGrad: noisy copies per instance (noisySampleCount)")
    parser.add_argument("--max-blur-sigma", type=float,
                        help="blur IG and XRAI: Gaussian blur sigma, in pixels, of the blurred "
                             "image used as baseline (maxBlurSigma)")
    parser.add_argument("--top-k", type=int, help="explain the k largest outputs (-1: all)")
    parser.add_argument("--max-rows-per-call", type=int,
                        help="rows per model call; lower it to use less memory")
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
    overrides = {option: getattr(args, flag) for flag, option in METHOD_FLAGS.items()}
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
