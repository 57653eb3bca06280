"""`xai-callback compare-importance A B`: attribution drift between two importance files.

A and B are `importance.json` files written by `batch-explain` (two versions of
a model on the same data, or one model on training vs serving data). Prints
each feature's share of the total attribution before and after and the change;
`--output` writes the full report as JSON. Exit status: 0 when no feature's
share moved by more than `--threshold`, 1 when one did (so a CI job or a
scheduled job can gate on it), 2 on usage errors (a file that cannot be read
or is not an importance file).
"""

import json
import sys

EXIT_OK, EXIT_DRIFT, EXIT_USAGE = 0, 1, 2
DEFAULT_THRESHOLD = 0.1  # xai_callback.batch.drift.DEFAULT_THRESHOLD


def register(subparsers):
    parser = subparsers.add_parser(
        "compare-importance",
        help="compare two importance files (attribution drift); exit 1 over the threshold",
        description="Compares two importance.json files feature by feature on their share of the "
                    "total mean |attribution| (as Vertex Model Monitoring's feature attribution "
                    "drift). Exit status 0: no drift; 1: a feature's share moved by more than "
                    "--threshold; 2: usage error.",
    )
    parser.add_argument("before", metavar="A", help="the reference importance.json (older model, training data)")
    parser.add_argument("after", metavar="B", help="the importance.json to check")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"largest share change (0..1) that is not drift (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--top", type=int, default=10, help="features to print (default 10)")
    parser.add_argument("--output", metavar="FILE.json", help="write the full report here")
    parser.set_defaults(func=run)
    return parser


def run(args):
    from xai_callback.batch import compare_importance, parse_importance
    from xai_callback.batch.drift import format_report
    from xai_callback.publish import storage

    try:
        before, after = (parse_importance(storage.read_text(path), where=path)
                         for path in (args.before, args.after))
        report = compare_importance(before, after, threshold=args.threshold)
    except (OSError, ValueError) as e:
        return _fail(str(e), EXIT_USAGE)
    except Exception as e:  # noqa: BLE001 - tf.io.gfile raises NotFoundError (an OpError)
        return _fail(f"cannot read the importance files: {e}", EXIT_USAGE)
    for line in format_report(report, top=args.top):
        print(line)
    if args.output:
        storage.write_text(args.output, json.dumps(report, indent=1) + "\n")
    return EXIT_DRIFT if report["drifted"] else EXIT_OK


def _fail(message, code):
    print(f"xai-callback compare-importance: {message}", file=sys.stderr)
    return code
