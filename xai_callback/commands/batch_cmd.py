"""`xai-callback batch-explain EXPORT --input PATTERN --output DIR`: explanations of whole files, on Beam.

Writes Vertex AI's batch layout (`prediction.results-*`, `prediction.errors_stats-*`)
and `importance.json` to DIR. Flags this command does not know are Beam's
pipeline options, given after the command's own as `--flag=value`
(`--runner=DataflowRunner --project=P ...`, `--direct_num_workers=2
--direct_running_mode=multi_processing`). Exit status: 0 when the pipeline
ran (rows that failed are in the errors files), 1 when the export is not
explanation-ready, 2 on usage errors (no matching input, a format the export
cannot take, settings it cannot explain, Beam not installed), 3 on an internal error.
"""

import sys

from xai_callback.commands.method_flags import add_method_flags, method_options

EXIT_OK, EXIT_EXPORT_INVALID, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3
FORMATS = ("jsonl", "csv", "tfrecord")  # xai_callback.batch.formats.FORMATS
ROUTES = ("auto", "signature", "python")  # xai_callback.batch.explaining.ROUTES


def register(subparsers):
    parser = subparsers.add_parser(
        "batch-explain",
        allow_abbrev=False,  # so no Beam flag is taken for an abbreviation of ours
        help="explain files of instances with an Apache Beam pipeline (Vertex batch output layout)",
        description="Explains every instance of the input files (JSON Lines, CSV with a header, "
                    "TFRecord of tf.Example) with the export's xai_explain signature, or the "
                    "Python explainer for other settings, and writes sharded JSON Lines results, "
                    "an errors output (a bad row never fails the job) and the global feature "
                    "importance. Unknown flags (--runner=..., --direct_num_workers=2, "
                    "--project=...) are passed to Beam. Exit status 0: done; 1: the export is not "
                    "explanation-ready; 2: usage error.",
    )
    parser.add_argument("export_dir", help="SavedModel directory (local, gs://, ...)")
    parser.add_argument("--input", required=True, metavar="PATTERN",
                        help="input files, globs allowed (local, gs://, s3:// with beam[aws])")
    parser.add_argument("--output", required=True, metavar="DIR", help="folder of the output files")
    parser.add_argument("--input-format", choices=FORMATS,
                        help="default: from the extension (.jsonl/.json, .csv, .tfrecord)")
    add_method_flags(parser)
    parser.add_argument("--route", choices=ROUTES, default="auto",
                        help="auto (default): xai_explain when the export has it and no setting is "
                             "given, else the Python explainer")
    parser.add_argument("--batch-size", type=int, default=32, help="instances per model call (32)")
    parser.add_argument("--num-shards", type=int, default=0,
                        help="results files (default 0: as the runner decides)")
    parser.add_argument("--exclude-fields", default="", metavar="A,B",
                        help="instance fields written back but not sent to the model (e.g. a label)")
    parser.add_argument("--no-importance", action="store_true", help="do not write importance.json")
    parser.add_argument("--plot", action="store_true",
                        help="also draw importance.png (needs the plot extra)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run in --output")
    parser.set_defaults(func=run, pass_through=True)
    return parser


def run(args):
    from xai_callback.errors import ExplanationFailedError, ExportVerificationError

    try:
        from xai_callback.batch import batch_explain
        batch_explain  # noqa: B018 - imports Beam now, so a missing extra is a usage error
    except ImportError as e:
        return _fail(str(e), EXIT_USAGE)
    try:
        result = batch_explain(
            args.export_dir, args.input, args.output, input_format_name=args.input_format,
            method=args.method, granularity=args.granularity, route=args.route,
            exclude_fields=[f for f in args.exclude_fields.split(",") if f.strip()],
            batch_size=args.batch_size, num_shards=args.num_shards,
            importance=not args.no_importance, plot=args.plot, overwrite=args.overwrite,
            max_rows_per_call=args.max_rows_per_call,
            pipeline_options=list(args.passed_through),
            **method_options(args))
    except ExportVerificationError as e:
        return _fail(str(e), EXIT_EXPORT_INVALID)
    except ExplanationFailedError as e:
        return _fail(f"internal error: {e}", EXIT_INTERNAL)
    except (ValueError, TypeError, ImportError) as e:
        return _fail(str(e), EXIT_USAGE)
    print(f"xai-callback batch-explain: {result.explained} instances explained, {result.failed} "
          f"failed (route: {result.route}); results in {result.files['results']}"
          + (f", errors in {result.files['errors']}" if result.failed else ""), file=sys.stderr)
    if result.importance is not None:
        top = list(result.importance["features"].items())[:5]
        shown = ", ".join(f"{name} {entry['share']:.1%}" for name, entry in top)
        print(f"xai-callback batch-explain: importance ({result.files['importance']}): {shown}",
              file=sys.stderr)
    return EXIT_OK


def _fail(message, code):
    print(f"xai-callback batch-explain: {message}", file=sys.stderr)
    return code
