"""A text classifier with TextVectorization inside the model, explained per token.

Raw strings go in; `TextVectorization` turns them into token ids and
`Embedding(mask_zero=True)` into vectors, then pooling and a dense layer.
Token ids have no gradient, so the callback cuts the model after the
embedding: `xai_preprocess` gives one embedding row per token (plus the ids
and the padding mask), `xai_model` the rest, and integrated gradients come
back per token — padding gets exactly zero. Runs on CPU in well under a
minute on generated reviews:

    python examples/text_classifier.py --export-dir /tmp/reviews_export
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import xai_callback

POSITIVE = ["great", "fun", "moving", "clever", "charming"]
NEGATIVE = ["boring", "awful", "dull", "clumsy", "predictable"]
NEUTRAL = ["the", "movie", "plot", "acting", "was", "and", "a", "story", "ending", "cast"]
SEQUENCE_LENGTH = 12


def make_reviews(rows=3000, seed=0):
    """Short reviews; the label says whether positive words outnumber negative ones."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        words = list(rng.choice(NEUTRAL, rng.integers(2, 6)))
        good, bad = rng.integers(0, 3), rng.integers(0, 3)
        words += list(rng.choice(POSITIVE, good)) + list(rng.choice(NEGATIVE, bad))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(float(good > bad))
    return np.array(texts, dtype=object).reshape(-1, 1), np.array(labels, "float32")


def build_model(texts):
    vectorize = keras.layers.TextVectorization(
        max_tokens=64, output_sequence_length=SEQUENCE_LENGTH, name="vectorize")
    vectorize.adapt(texts[:, 0])
    text = keras.Input(shape=(1,), dtype="string", name="review")
    x = keras.layers.Embedding(64, 16, mask_zero=True, name="embedding")(vectorize(text))
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    output = keras.layers.Dense(1, activation="sigmoid", name="positive")(x)
    model = keras.Model(text, output)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", default="exports/text_classifier")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--plot", help="write the token attributions as a picture here (PNG)")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    texts, labels = make_reviews()
    model = build_model(texts)
    callback = xai_callback.XaiExportCallback(
        args.export_dir, monitor="val_accuracy", save_best_only=True, overwrite=True, verbose=1)
    # Keras takes strings as tensors (not numpy object arrays).
    model.fit(tf.constant(texts), labels, validation_split=0.2, epochs=args.epochs, batch_size=64,
              callbacks=[callback], verbose=0)
    print(f"\nBest epoch: {callback.best_epoch + 1}")
    print(callback.last_export.describe())

    reviews = ["the acting was great and the plot clever", "a dull and predictable story",
               "great cast but an awful ending"]
    response = xai_callback.explain(args.export_dir, [[r] for r in reviews])
    for review, explanation in zip(reviews, response.explanations):
        attribution = explanation.attributions[0]
        print(f"\n{review!r}: positive {attribution.instance_output_value:.3f} "
              f"(baseline {attribution.baseline_output_value:.3f})")
        print("  " + _tokens_line(explanation, attribution))
    if args.plot:
        from xai_callback.explain.plot import plot_explanations

        plot_explanations(response, args.plot)
        print(f"\nPlot: {args.plot}")


def _tokens_line(explanation, attribution):
    """`token(+0.12) token(-0.03) ...`, or the raw values when tokens are unknown."""
    values = np.asarray(attribution.feature_attributions["review"], dtype=float)
    tokens = (getattr(explanation, "tokens", None) or {}).get("review")
    if tokens is None:
        return np.array2string(values, precision=3)
    return " ".join(f"{t}({v:+.2f})" for t, v in zip(tokens, values) if t)


if __name__ == "__main__":
    main()
