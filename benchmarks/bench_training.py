"""Training overhead: fit with XaiExportCallback(save_best_only=True) vs no callback vs ModelCheckpoint.

`--backend jax|torch` runs every fit on that Keras backend (KERAS_BACKEND in
the fresh process of each fit).
"""

import argparse
import shutil
import tempfile
import time

import common

VARIANTS = ("none", "xai", "checkpoint")
LABELS = {
    "none": "no callback",
    "xai": "XaiExportCallback(save_best_only=True)",
    "checkpoint": "ModelCheckpoint(save_best_only=True) → .keras",
}
HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")
FULL = {"rows": 8192, "features": 16, "hidden": (64, 32), "epochs": 30, "batch": 64}
QUICK = {"rows": 512, "features": 4, "hidden": (16,), "epochs": 3, "batch": 64}


def instrument(callback):
    """Adds up wall/CPU time spent in the epoch-level hooks (batch hooks untouched: they steer async dispatch)."""
    spent = {hook: {"wall": 0.0, "cpu": 0.0} for hook in HOOKS}
    for hook in HOOKS:
        original = getattr(callback, hook)

        def wrapper(*args, _hook=hook, _original=original, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_hook]["wall"] += time.perf_counter() - wall
                spent[_hook]["cpu"] += time.process_time() - cpu

        setattr(callback, hook, wrapper)
    return spent


def make_callback(variant, workdir):
    """The callback of one variant, or None."""
    import keras

    import xai_callback

    if variant == "xai":
        return xai_callback.XaiExportCallback(f"{workdir}/export", monitor="val_loss", save_best_only=True)
    if variant == "checkpoint":
        return keras.callbacks.ModelCheckpoint(f"{workdir}/best.keras", monitor="val_loss", save_best_only=True)
    return None


def fit_once(variant, settings):
    """One fit in this process; returns its timings (seconds) and how training went."""
    x, y = common.make_data(settings["rows"], settings["features"])
    model = common.build_mlp(settings["features"], settings["hidden"])
    workdir = tempfile.mkdtemp(prefix="bench_training_")
    try:
        callback = make_callback(variant, workdir)
        spent = instrument(callback) if callback else {h: {"wall": 0.0, "cpu": 0.0} for h in HOOKS}
        fit, history = common.timed(
            model.fit, x, y, validation_split=0.2, epochs=settings["epochs"], batch_size=settings["batch"],
            verbose=0, callbacks=[callback] if callback else [],
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    val_loss = history.history["val_loss"]
    result = {
        "improvements": sum(1 for i, v in enumerate(val_loss) if v < min(val_loss[:i], default=float("inf"))),
        "best_val_loss": min(val_loss),
    }
    for clock in ("wall", "cpu"):
        begin, end = spent["on_train_begin"][clock], spent["on_train_end"][clock]
        result.update({
            f"fit_{clock}": fit[clock],
            f"begin_{clock}": begin,
            f"epochs_{clock}": spent["on_epoch_begin"][clock] + spent["on_epoch_end"][clock],
            f"end_{clock}": end,
            f"no_end_{clock}": fit[clock] - end,
            f"loop_{clock}": fit[clock] - end - begin,
        })
    return result


SCOPES = (  # (key, hooks counted by the direct measure, what is included)
    ("fit", ("begin", "epochs", "end"), "everything (train-begin tracing, epochs, train-end export)"),
    ("no_end", ("begin", "epochs"), "without the train-end export"),
    ("loop", ("epochs",), "epoch loop only (without train-begin and train-end hooks)"),
)


def timing_table(results):
    """Markdown table: fit totals and the time spent inside the callback's hooks."""
    rows = []
    for variant in VARIANTS:
        runs = results[variant]
        rows.append([LABELS[variant], common.fmt_seconds(common.column(runs, "fit_wall")),
                     common.fmt_seconds(common.column(runs, "fit_cpu"))]
                    + [common.fmt_ms(common.column(runs, f"{hook}_wall")) for hook in ("begin", "epochs", "end")]
                    + [f"{common.summary(common.column(runs, 'improvements'))['median']:.0f}"])
    headers = ["variant", "fit wall", "fit CPU", "in on_train_begin", "in on_epoch_begin/end (sum over epochs)",
               "in on_train_end", "improved epochs"]
    return common.markdown_table(headers, rows)


def overhead_table(results):
    """Markdown table: overhead over the same round's no-callback fit, measured and direct (time in hooks)."""
    base = results["none"]
    rows = []
    for variant in VARIANTS[1:]:
        runs = results[variant]
        for key, hooks, scope in SCOPES if variant == "xai" else SCOPES[:1]:
            hook_time = [sum(r[f"{h}_wall"] for h in hooks) for r in runs]
            rows.append([LABELS[variant], scope] + [
                common.fmt_percent(common.paired_ratios(common.column(runs, f"{key}_{clock}"),
                                                        common.column(base, f"fit_{clock}")))
                for clock in ("wall", "cpu")
            ] + [common.fmt_percent([1 + t / b for t, b in zip(hook_time, common.column(base, "fit_wall"))])])
    headers = ["variant", "what is included", "overhead, wall", "overhead, CPU",
               "overhead, direct (time in hooks / no-callback fit)"]
    return common.markdown_table(headers, rows)


def main(argv=None):
    parser = common.base_parser(__doc__)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax", "torch"),
                        help="Keras backend of the fits (default tensorflow)")
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else FULL
    if args.worker:
        common.report(fit_once(args.worker, settings))
        return
    repeats = 1 if args.quick else args.repeats
    if args.quick and args.backend == "tensorflow":  # Smoke check: in this process.
        run = lambda variant: fit_once(variant, settings)  # noqa: E731
    else:
        run = lambda variant: common.run_fresh(  # noqa: E731
            __file__, "--worker", variant, *(["--quick"] if args.quick else []),
            env={"KERAS_BACKEND": args.backend})
    results = common.interleaved(list(VARIANTS), repeats, run, warmup=args.quick)
    steps = -(-int(settings["rows"] * 0.8) // settings["batch"])
    print(f"## Training overhead on the {args.backend} backend ({repeats} interleaved runs per variant, "
          f"{'in one process' if args.quick and args.backend == 'tensorflow' else 'each in a fresh process'}; "
          f"{settings['rows']} rows × {settings['features']} features, validation_split=0.2, "
          f"batch {settings['batch']} ({steps} steps/epoch), {settings['epochs']} epochs, "
          f"MLP {settings['features']}→{'→'.join(map(str, settings['hidden']))}→1, monitor val_loss)\n")
    print(timing_table(results))
    print()
    print(overhead_table(results))
    print("\nOverheads are per-round ratios to the no-callback fit of the same round, as median [min – max]. "
          "Hook times are wall time spent inside the callback's own epoch-level hooks; the direct overhead "
          "divides them by the no-callback fit of the same round (immune to machine noise, blind to indirect "
          "costs). ModelCheckpoint has no train-begin/end work, so only its total is shown.")
    print(f"\nMachine: {common.machine_note()}")


if __name__ == "__main__":
    main()
