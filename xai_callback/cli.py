"""The `xai-callback` command: inspect, validate, explain, serve and batch-explain exports.

Loading a SavedModel runs its graph: use these commands on models you trust.
"""

import argparse
import importlib
import sys

COMMANDS = ("inspect_cmd", "validate_cmd", "explain_cmd", "serve_cmd", "batch_cmd", "compare_cmd")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="xai-callback",
        description="Inspect, validate, explain and serve explanation-ready SavedModels.",
    )
    from xai_callback._version import __version__

    parser.add_argument("--version", action="version", version=f"xai-callback {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"xai_callback.commands.{name}").register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    # A command that runs a Beam pipeline passes the flags it does not know
    # (`--runner=DataflowRunner ...`) on to Beam, as Beam's own examples do.
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "pass_through", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.passed_through = unknown
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
