"""`xai-callback validate DIR [--json]`: check an export against the contract.

Exit status: 0 when every rule passes, 1 when one fails, 2 on usage errors
(missing directory, not a SavedModel).
"""

import json
import sys

EXIT_OK, EXIT_RULE_FAILED, EXIT_USAGE = 0, 1, 2


def register(subparsers):
    parser = subparsers.add_parser(
        "validate",
        help="check a SavedModel against the explanation contract",
        description="Checks signatures, Vertex explanation metadata and parameters, "
                    "and gradients of a SavedModel (any SavedModel, not only ours). "
                    "Exit status 0: every rule passes; 1: a rule fails; 2: usage error.",
    )
    parser.add_argument("export_dir", help="SavedModel directory (local, gs://, ...)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)
    return parser


def run(args):
    # TensorFlow is imported only when the command runs; `xai_callback.explain`
    # registers the rules of `validate` that run explanations (the package
    # root no longer imports it when the command line starts).
    import xai_callback.explain  # noqa: F401
    from xai_callback.contract.validation import validate

    try:
        report = validate(args.export_dir)
    except FileNotFoundError as e:
        print(f"xai-callback validate: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return EXIT_OK if report.ok else EXIT_RULE_FAILED
