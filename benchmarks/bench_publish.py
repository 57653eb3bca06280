"""Export to an S3 server vs to local disk: the cost of publishing through fsspec.

Each round replaces an existing export (what the callback does after training:
`prepare()` ran before the first batch), `verify=True`, to a local folder and to
`s3://` on moto's S3 server (started here on 127.0.0.1, in its own process).
The S3 export is staged and verified on local disk like the local one, then
copied to the store in protocol order (provenance first, `saved_model.pb` and
the commit marker last; the old export's files copied aside first). Models:
an MLP and MobileNetV2 (`weights=None`, 224x224, 3.5 M parameters).

moto keeps objects in memory and answers on the loopback interface, so the
ratio measures the protocol's requests and copies, not a network: a real
bucket adds its latency to each of the replace's requests (one or more per file).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

import common

import xai_callback  # noqa: E402
from bench_placement import build_cnn  # noqa: E402
from xai_callback.publish import object_stores  # noqa: E402

VARIANTS = ("local", "s3")
LABELS = {"local": "local disk (baseline)", "s3": "s3:// on moto's S3 server"}


def start_moto():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=log, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                      AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    object_stores.file_system("s3://bench").mkdir("bench")
    return process


def main():
    args = common.base_parser(__doc__).parse_args()
    models = {"MLP 20-64-64-1": lambda: common.build_mlp(20, [64, 64])}
    if not args.quick:
        models["MobileNetV2 224x224"] = build_cnn
    moto = start_moto()
    rows = []
    try:
        for name, build in models.items():
            exporter = xai_callback.ExplainableExporter(build()).prepare()
            targets = {"local": tempfile.mkdtemp() + "/export", "s3": f"s3://bench/{len(rows)}/export"}

            def run_one(variant):
                seconds, _ = common.timed(exporter.export, targets[variant])
                return seconds

            results = common.interleaved(list(VARIANTS), args.repeats, run_one)
            wall = {v: common.column(results[v], "wall") for v in VARIANTS}
            for variant in VARIANTS:
                ratio = ("1 (baseline)" if variant == "local"
                         else common.fmt_ratio(common.paired_ratios(wall[variant], wall["local"])))
                rows.append([name, LABELS[variant], common.fmt_ms(wall[variant]), ratio])
    finally:
        moto.terminate()
        moto.wait(timeout=30)
    print(common.machine_note())
    print(common.markdown_table(["model", "destination (a replacing export, verify=True)",
                                 "wall: median [min–max]", "ratio to local disk"], rows))


if __name__ == "__main__":
    main()
