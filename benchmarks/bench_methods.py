"""The methods: explanation speed before vs after a change, and what XRAI costs.

Same run, medians, one fresh process per measurement (TensorFlow's traces
start cold each time, as in a new `xai-callback explain`):

1. Speed before vs after: the code at `--baseline-ref` (a git ref of this
   repository, extracted with `git archive`) and the working tree explain the
   same exports with the same settings, runs interleaved round by round:
   integrated gradients (50 steps), sampled Shapley (10 paths) and SmoothGrad
   (3 noisy copies x 50 steps), 64 instances of a 32-feature MLP. Each
   process explains once to trace (not timed), then `--calls` times; its
   median call is one measurement. Reported: medians and the ratio after /
   before per round.
2. XRAI on a small image model (two conv layers, 32x32x3 images): seconds per
   image for integrated gradients (the baseline, same steps), XRAI (the same
   integrated gradients, then PAIR saliency's segmentation and regions) and
   blur IG, working tree only.

Run:  .venv/bin/python benchmarks/bench_methods.py [--repeats 7] [--baseline-ref main] [--quick]
(--quick: 2 rounds, 16 instances, 2 images; a smoke check)
"""

import argparse
import os
import tempfile

import common

import numpy as np  # noqa: E402  (common quiets TF first)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
METHODS = {
    "integrated-gradients": {"method": "integrated-gradients", "step_count": 50},
    "sampled-shapley": {"method": "sampled-shapley", "path_count": 10},
    "smoothgrad": {"method": "smoothgrad", "step_count": 50, "noise_sigma": 0.1,
                   "noisy_sample_count": 3},
}
IMAGE_METHODS = {
    "integrated-gradients": {"method": "integrated-gradients", "step_count": 50},
    "xrai": {"method": "xrai", "step_count": 50},
    "blur-ig": {"method": "blur-ig", "step_count": 50, "max_blur_sigma": 8.0},
}
IMAGE_METADATA = {"inputs": {"pixels": {"inputTensorName": "image", "modality": "image",
                                        "inputBaselines": [0.0]}},
                  "outputs": {"scores": {"outputTensorName": "scores"}}}


def image_model(size=32, channels=16, classes=10):
    """A small conv net on float32[None, size, size, 3] images, as a tf.function."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    k1 = tf.constant(rng.normal(0, 0.2, (3, 3, 3, channels)).astype(np.float32))
    k2 = tf.constant(rng.normal(0, 0.1, (3, 3, channels, channels)).astype(np.float32))
    dense = tf.constant(rng.normal(0, 0.1, (channels, classes)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, name="image")])
    def model(image):
        h = tf.nn.relu(tf.nn.conv2d(image, k1, 1, "SAME"))
        h = tf.nn.relu(tf.nn.conv2d(h, k2, 1, "SAME"))
        return {"scores": tf.nn.softmax(tf.reduce_mean(h, axis=[1, 2]) @ dense)}

    return model.get_concrete_function()


def images(count, size=32):
    """Smooth random images with a few bright blobs: something to segment."""
    rng = np.random.default_rng(2)
    out = rng.uniform(0, 0.3, (count, size, size, 3)).astype(np.float32)
    for image in out:
        for _ in range(3):
            row, col = rng.integers(0, size - 8, 2)
            image[row:row + 8, col:col + 8] += rng.uniform(0.3, 0.7, 3)
    return out


def mlp_worker(export_dir, method, instances, calls):
    """Median seconds of one `explain` call after a traced first one (any version's API)."""
    from xai_callback.explain import load_explainer

    options = dict(METHODS[method])
    explainer = load_explainer(export_dir, validate=False)
    x = np.random.default_rng(3).normal(size=(instances, 32)).astype(np.float32)
    explainer.explain({"x": x}, **options)  # traces
    seconds = [common.timed(explainer.explain, {"x": x}, **options)[0]["wall"] for _ in range(calls)]
    return {"seconds": float(np.median(seconds))}


def image_worker(method, count, calls):
    """Median seconds per image of `explain` on the small image model (working tree)."""
    import warnings

    from xai_callback.explain import Explainer

    explainer = Explainer(image_model(), IMAGE_METADATA, {"integratedGradientsAttribution": {"stepCount": 50}})
    batch = {"image": images(count)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer.explain(batch, **IMAGE_METHODS[method])  # traces
        seconds = [common.timed(explainer.explain, batch, **IMAGE_METHODS[method])[0]["wall"]
                   for _ in range(calls)]
    return {"seconds_per_image": float(np.median(seconds)) / count}


def main():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--baseline-ref", default="main",
                        help="git ref of the code to compare with (default main)")
    parser.add_argument("--calls", type=int, default=5, help="timed calls per process (default 5)")
    parser.set_defaults(repeats=7)
    args = parser.parse_args()
    instances, count = (16, 2) if args.quick else (64, 8)
    if args.quick:
        args.repeats = 2
    if args.worker:
        kind, *rest = args.worker
        if kind == "mlp":
            common.report(mlp_worker(rest[0], rest[1], instances, args.calls))
        else:
            common.report(image_worker(rest[0], count, args.calls))
        return
    script = os.path.abspath(__file__)
    with tempfile.TemporaryDirectory() as workdir:
        before = os.path.join(workdir, "before")
        os.makedirs(before)
        common.baseline_tree(args.baseline_ref, before)
        from bench_explain import mlp_export  # the parent runs this tree's code

        export_dir = mlp_export(os.path.join(workdir, "mlp"))
        trees = {"before": before, "after": REPO}
        names = [(tree, method) for method in METHODS for tree in trees]

        def run_one(name):
            tree, method = name
            return common.run_fresh(script, "--worker", "mlp", export_dir, method,
                                    "--calls", args.calls, *(["--quick"] if args.quick else []),
                                    env={"PYTHONPATH": trees[tree]})["seconds"]

        timing = common.interleaved(names, args.repeats, run_one, warmup=False)
        image_names = list(IMAGE_METHODS)
        image_timing = common.interleaved(
            image_names, args.repeats,
            lambda m: common.run_fresh(script, "--worker", "image", m, "--calls", args.calls,
                                       *(["--quick"] if args.quick else []),
                                       env={"PYTHONPATH": REPO})["seconds_per_image"],
            warmup=False)
    print_results(args, timing, image_timing, instances, count)


def print_results(args, timing, image_timing, instances, count):
    command = (f".venv/bin/python benchmarks/bench_methods.py --repeats {args.repeats} "
               f"--calls {args.calls} --baseline-ref {args.baseline_ref}" + (" --quick" if args.quick else ""))
    print(f"# Methods: speed before vs after, XRAI's cost\n\n`{command}`\n\n{common.machine_note()}\n")
    print(f"## Explanation speed: `{args.baseline_ref}` (before) vs the working tree (after)\n")
    print(f"{instances} instances of a 32-feature tanh MLP (10 classes), one fresh process per "
          f"measurement, median of {args.calls} calls after a traced one; {args.repeats} rounds "
          "interleaved: median [min–max].\n")
    rows = []
    for method in METHODS:
        b, a = timing[("before", method)], timing[("after", method)]
        rows.append([method, common.fmt_ms(b), common.fmt_ms(a),
                     common.fmt_ratio(common.paired_ratios(a, b))])
    print(common.markdown_table(["method", "before", "after", "after / before"], rows))
    print(f"\n## XRAI on a small image model\n\n{count} images of 32x32x3, two conv layers "
          f"(16 channels), 50 steps, zero baseline; seconds per image, median [min–max] of "
          f"{args.repeats} fresh processes; ratio to integrated gradients per round.\n")
    ig = image_timing["integrated-gradients"]
    rows = [[m, common.fmt_ms(v), common.fmt_ratio(common.paired_ratios(v, ig))]
            for m, v in image_timing.items()]
    print(common.markdown_table(["method", "per image", "vs integrated gradients"], rows))


if __name__ == "__main__":
    main()
