"""`xai_callback.signatures.inputs.as_input_dict`: what `model.predict` accepts, and errors naming the input."""

import numpy as np
import pytest
import tensorflow as tf

from xai_callback.errors import InputError
from xai_callback.signatures.inputs import as_input_dict

PETS = {
    "Type": tf.TensorSpec([None, 1], tf.string, name="Type"),
    "Age": tf.TensorSpec([None, 1], tf.int64, name="Age"),
    "Fee": tf.TensorSpec([None, 1], tf.float32, name="Fee"),
}
SINGLE = {"x": tf.TensorSpec([None, 3], tf.float32, name="x")}


def as_lists(tensors):
    return {k: v.numpy().tolist() for k, v in tensors.items()}


@pytest.mark.parametrize("value", [
    {"Type": np.array(["Cat", "Dog"]), "Age": np.array([3, 12]), "Fee": np.array([1.5, 0.0])},
    {"Type": np.array([["Cat"], ["Dog"]], object), "Age": [[3], [12]], "Fee": [[1.5], [0.0]]},
    {"Type": [b"Cat", b"Dog"], "Age": (3.0, 12.0), "Fee": tf.constant([[1.5], [0.0]])},
    [np.array(["Cat", "Dog"]), np.array([3, 12]), np.array([1.5, 0.0])],  # input order
])
def test_batches_by_name_or_order_give_the_same_tensors(value):
    got = as_input_dict(value, PETS, "serving_default")
    assert {k: (t.dtype, t.shape.as_list()) for k, t in got.items()} == {
        "Type": (tf.string, [2, 1]), "Age": (tf.int64, [2, 1]), "Fee": (tf.float32, [2, 1])}
    assert as_lists(got) == {"Type": [[b"Cat"], [b"Dog"]], "Age": [[3], [12]], "Fee": [[1.5], [0.0]]}


def test_scalars_are_one_instance():
    got = as_input_dict({"Type": "Cat", "Age": 3, "Fee": np.float32(2.0)}, PETS)
    assert as_lists(got) == {"Type": [[b"Cat"]], "Age": [[3]], "Fee": [[2.0]]}
    line = as_input_dict("5.1,3.5", {"csv": tf.TensorSpec([None], tf.string, name="csv")})
    assert line["csv"].numpy().tolist() == [b"5.1,3.5"]


def test_single_input_takes_a_bare_array_or_nested_list():
    x = np.arange(6, dtype=np.float64).reshape(2, 3)
    for value in (x, x.tolist(), tf.constant(x, tf.float32)):
        got = as_input_dict(value, SINGLE)["x"]
        assert got.dtype == tf.float32 and got.numpy().tolist() == x.tolist()


@pytest.mark.parametrize("value, error, named", [
    ({"Type": ["Cat"], "Age": [3]}, InputError, r"missing: \['Fee'\]"),
    ({"Type": ["Cat"], "Age": [3], "Fee": [1.0], "Color": ["Black"]}, InputError, "'Color'"),
    ({"Type": ["Cat", "Dog"], "Age": [3], "Fee": [1.0, 2.0]}, InputError, r"'Age': 1"),
    ({"Type": ["Cat"], "Age": [3.5], "Fee": [1.0]}, InputError, r"'Age'.*non-integer value 3\.5"),
    ({"Type": [3], "Age": [3], "Fee": [1.0]}, InputError, r"'Type'.*value 3"),
    ({"Type": ["Cat"], "Age": ["three"], "Fee": [1.0]}, InputError, r"'Age'.*'three'"),
    ([np.array(["Cat"]), np.array([3])], InputError, r"3 inputs \['Type', 'Age', 'Fee'\].*list of 2"),
    (np.array([1.0]), InputError, r"3 inputs.*ndarray"),
])
def test_bad_inputs_name_the_input(value, error, named):
    with pytest.raises(error, match=named) as info:
        as_input_dict(value, PETS, "serving_default")
    assert isinstance(info.value, ValueError)


def test_wrong_shape_names_input_and_shapes():
    with pytest.raises(InputError, match=r"Input 'x'.*float32\[None,3\].*\[2\] per instance"):
        as_input_dict([[1.0, 2.0]], SINGLE)


def test_unordered_specs_refuse_a_list_of_inputs():
    with pytest.raises(InputError, match="order is not recorded: give a dict"):
        as_input_dict([["Cat"], [3], [1.0]], PETS, ordered=False)


# --- the exporter's sample= takes the same forms ------------------------------------

import keras  # noqa: E402

from xai_callback import XaiExportCallback, export_explainable_model  # noqa: E402
from xai_callback.callbacks.config import serialize_options  # noqa: E402
from xai_callback.names import SAMPLE_FILE, extra_path  # noqa: E402
from xai_callback.signatures.tensor_io import decode_tensor_dict  # noqa: E402
from xai_callback.publish import storage  # noqa: E402


@pytest.fixture(scope="module")
def two_inputs():
    """A trained model with inputs `size` (2 numbers) and `count` (1 number), in that order."""
    keras.utils.set_random_seed(0)
    size, count = keras.Input((2,), name="size"), keras.Input((1,), name="count")
    hidden = keras.layers.Dense(4, activation="tanh")(keras.layers.Concatenate()([size, count]))
    model = keras.Model([size, count], keras.layers.Dense(1, name="score")(hidden))
    model.compile("adam", "mse")
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(32, 2)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")]
    model.fit(x, rng.normal(size=(32, 1)), epochs=1, verbose=0)
    return model, x


def stored_sample(path):
    return {k: v.numpy() for k, v in decode_tensor_dict(
        storage.read_json(extra_path(str(path), SAMPLE_FILE))).items()}


@pytest.mark.parametrize("form", ["list", "tuple", "dict-with-label", "flat-count"])
def test_exporter_sample_as_model_predict_takes_it(two_inputs, tmp_path, form):
    model, (size, count) = two_inputs
    sample = {
        "list": [size[:4], count[:4]],
        "tuple": (size[:4].tolist(), count[:4].tolist()),
        "dict-with-label": {"size": size[:4], "count": count[:4], "label": np.zeros(4)},
        "flat-count": {"size": size[:4], "count": count[:4, 0]},  # [batch] for a [None, 1] input
    }[form]
    export_explainable_model(model, str(tmp_path / "e"), sample=sample)
    stored = stored_sample(tmp_path / "e")
    assert sorted(stored) == ["count", "size"]
    np.testing.assert_array_equal(stored["size"], size[:4])
    np.testing.assert_array_equal(stored["count"], count[:4])


def test_exporter_sample_bare_array_and_config_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(1, name="y")(inputs))
    x = np.arange(6, dtype="float32").reshape(2, 3)
    callback = XaiExportCallback(str(tmp_path / "e"), sample=x)
    assert serialize_options({"sample": x})["sample"] == x.tolist()
    restored = XaiExportCallback.from_config(callback.get_config())
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((2, 1)), epochs=1, verbose=0, callbacks=[restored])
    np.testing.assert_array_equal(stored_sample(tmp_path / "e")["x"], x)


def test_exporter_sample_that_does_not_fit_names_the_input(two_inputs, tmp_path):
    model, (size, count) = two_inputs
    with pytest.raises(InputError, match=r"sample=.*'size'.*float32\[None,2\]") as info:
        export_explainable_model(model, str(tmp_path / "e"), sample=[size[:4, :1], count[:4]])
    assert info.value.key == "size"
    with pytest.raises(InputError, match=r"sample=.*'count'.*missing: \['count'\]"):
        export_explainable_model(model, str(tmp_path / "e"), sample={"size": size[:4]})
    assert not (tmp_path / "e").exists()


def test_exporter_sample_dataset_is_refused_with_the_batch_to_take(two_inputs, tmp_path):
    model, _ = two_inputs
    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((4, 3), "float32")).batch(2)
    with pytest.raises(TypeError, match=r"of type _BatchDataset.*next\(iter\(dataset\)\)"):
        export_explainable_model(model, str(tmp_path / "e"), sample=dataset)
