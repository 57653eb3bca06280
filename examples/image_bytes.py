"""Image example: PNG/JPEG bytes in, a small CNN in the middle.

`xai_preprocess` decodes and resizes encoded images into the float batch the
CNN takes, so attributions are computed on pixels, not on bytes. Generated
data: a bright square in the top-left (class 0) or bottom-right (class 1).

    python examples/image_bytes.py --export-dir /tmp/image_export
"""

import argparse

import numpy as np
import tensorflow as tf
import keras

import xai_callback

SIZE = 24


def make_images(rows=512, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 60, size=(rows, SIZE, SIZE, 3))
    labels = rng.integers(0, 2, size=rows)
    half = SIZE // 2
    for img, label in zip(images, labels):
        r, c = (2, 2) if label == 0 else (half + 2, half + 2)
        img[r:r + 8, c:c + 8] = 230
    return images.astype("uint8"), labels.astype("int32")


def encode(images, fmt="png"):
    encoder = tf.io.encode_png if fmt == "png" else tf.io.encode_jpeg
    return [encoder(img).numpy() for img in images]


@tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
def decode_images(image_bytes):
    """Encoded PNG/JPEG bytes -> `{"image": float32[batch, 24, 24, 3]}` in [0, 1]."""

    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, [SIZE, SIZE])
        return tf.ensure_shape(image, [SIZE, SIZE, 3])

    images = tf.map_fn(decode_one, image_bytes, fn_output_signature=tf.float32)
    return {"image": images}


def build_model():
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, activation="relu")(x)
    # Flatten keeps where the square is; global pooling would throw that away.
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="probabilities")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", default="exports/image_bytes")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args(argv)

    images, labels = make_images()
    model = build_model()
    sample = {"image_bytes": encode(images[:2], "png") + encode(images[2:4], "jpeg")}
    callback = xai_callback.XaiExportCallback(
        args.export_dir,
        monitor="val_loss",
        save_best_only=True,
        preprocess_fn=decode_images,
        sample=sample,
        explanation_spec=xai_callback.ExplanationSpec(
            features=[xai_callback.Feature(
                "image", modality="image",
                visualization=xai_callback.Visualization(
                    type="OUTLINES", polarity="POSITIVE", overlay_type="ORIGINAL"))],
            output=xai_callback.Output(
                "probabilities", index_display_name_mapping=["top_left", "bottom_right"]),
            method=xai_callback.XRAI(step_count=20),
        ),
        verbose=1,
    )
    model.fit(images.astype("float32") / 255.0, labels, validation_split=0.25,
              epochs=args.epochs, batch_size=32, callbacks=[callback], verbose=0)
    loaded = tf.saved_model.load(args.export_dir)
    probs = loaded.signatures["serving_default"](image_bytes=tf.constant(sample["image_bytes"]))
    print("serving_default on 2 PNG + 2 JPEG:", np.round(probs["probabilities"].numpy(), 3).tolist())


if __name__ == "__main__":
    main()
