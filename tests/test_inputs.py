"""`xai_callback.inputs.as_input_dict`: what `model.predict` accepts, and errors naming the input."""

import numpy as np
import pytest
import tensorflow as tf

from xai_callback.errors import InputError
from xai_callback.inputs import as_input_dict

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
