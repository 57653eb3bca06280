"""Trained exports and input files for the batch tests (tests/test_batch*.py).

Every export is a real Keras model trained for an epoch on generated data and
written by the engine; input files are written as users would write them.
"""

import csv
import glob
import json

import keras
import numpy as np
import tensorflow as tf

from models import N_FEATURES, tabular_data, trained_mlp
from preprocessing_models import petfinder_model, text_classifier
from xai_callback import Output, ExplanationSpec, IntegratedGradients, export_explainable_model, parsing_receiver

IMAGE_SIZE = 8


def petfinder_export(path, explain_signature=True):
    """The TF tutorial's PetFinder model (strings and ints through lookups, split automatically)."""
    model, data = petfinder_model(rows=64)
    export_explainable_model(model, str(path), explain_signature=explain_signature,
                             sample={k: v[:4] for k, v in data.items()})
    return str(path), model, data


def text_export(path):
    """TextVectorization -> Embedding -> pooling -> Dense, split automatically (token attributions)."""
    model, data = text_classifier(rows=64)
    export_explainable_model(model, str(path), explain_signature=True, sample={"text": data["text"][:4]})
    return str(path), model, data


def image_model(seed=0):
    keras.utils.set_random_seed(seed)
    image = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="tanh")(image)
    x = keras.layers.GlobalAveragePooling2D()(x)
    output = keras.layers.Dense(3, activation="softmax", name="probabilities")(x)
    model = keras.Model(image, output)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def image_data(rows=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(rows, IMAGE_SIZE, IMAGE_SIZE, 1)).astype("float32")
    y = (x[:, :4].mean(axis=(1, 2, 3)) * 3).astype("int64") % 3
    return x, y


def image_export(path):
    """A tiny CNN over 8x8 grey images, 3 named classes, integrated gradients with 20 steps."""
    model = image_model()
    x, y = image_data()
    model.fit(x, y, epochs=1, verbose=0)
    spec = ExplanationSpec(output=Output("probabilities", index_display_name_mapping=["a", "b", "c"]),
                           method=IntegratedGradients(step_count=20))
    export_explainable_model(model, str(path), explain_signature=True, explanation_spec=spec, sample=x[:4])
    return str(path), model, x


def tf_example_export(path):
    """An MLP whose serving_default parses serialized tf.Example (parsing receiver)."""
    model, x = trained_mlp()
    receiver = parsing_receiver({"feats": tf.io.FixedLenFeature([N_FEATURES], tf.float32)})
    export_explainable_model(model, str(path), preprocess_fn=receiver,
                             sample={"examples": serialize_examples(x[:4])})
    return str(path), model, x


def serialize_examples(x):
    return [tf.train.Example(features=tf.train.Features(feature={
        "feats": tf.train.Feature(float_list=tf.train.FloatList(value=row))})).SerializeToString()
        for row in x]


def write_jsonl(path, instances, extra_lines=()):
    with open(path, "w") as handle:
        for instance in instances:
            handle.write(json.dumps(instance) + "\n")
        for line in extra_lines:
            handle.write(line + "\n")
    return str(path)


def write_csv(path, columns, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return str(path)


def petfinder_instances(data, rows):
    """Rows of the PetFinder columns as JSON instances (`{"Type": "Cat", "Age": 3, ...}`)."""
    return [{key: _plain(value[i, 0]) for key, value in data.items()} for i in range(rows)]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def read_lines(pattern):
    return [json.loads(line) for path in sorted(glob.glob(pattern)) for line in open(path)]


def tabular_rows(rows=16):
    return tabular_data(rows)[0]
