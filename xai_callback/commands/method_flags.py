"""The flags that choose and tune an attribution method, shared by `explain` and `batch-explain`.

Read without TensorFlow: the method names come from the spec's registry.
"""

from xai_callback.spec.methods import METHOD_NAMES

METHODS = tuple(METHOD_NAMES)
GRANULARITIES = ("raw", "encoded")  # xai_callback.explain.granularity (imports TF)
# Flag -> the option it sets (`xai_callback.spec.options.OPTIONS` spells them back).
METHOD_FLAGS = {"steps": "step_count", "paths": "path_count", "noise_sigma": "noise_sigma",
                "noisy_sample_count": "noisy_sample_count", "max_blur_sigma": "max_blur_sigma",
                "top_k": "top_k"}


def add_method_flags(parser):
    """`--method`, `--granularity`, the method's counts and settings, `--top-k`, `--max-rows-per-call`."""
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


def method_options(args):
    """`{option: value}` of the method flags given (None: not given)."""
    return {option: getattr(args, flag) for flag, option in METHOD_FLAGS.items()
            if getattr(args, flag) is not None}
