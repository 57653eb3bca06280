"""Runs `xai-callback serve ...` as a process, first reporting which web modules
building the command line imported (none may: the core package stays free of them)."""

import sys

from xai_callback import cli
from subprocess_runs import print_result

WEB_PACKAGES = ("starlette", "uvicorn", "anyio")

if __name__ == "__main__":
    cli.build_parser()
    import xai_callback.serve.options  # noqa: F401  (the command's registration reads it)

    print_result(web_modules=sorted(m for m in sys.modules if m.split(".")[0] in WEB_PACKAGES))
    sys.exit(cli.main(sys.argv[1:]))
