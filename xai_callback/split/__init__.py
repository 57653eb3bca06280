"""The automatic split of Keras preprocessing layers (TensorFlow; Keras 3 and tf-keras).

- `graph.py`: reading and running a functional graph node by node.
- `layers.py`: what each preprocessing layer encodes (vocabularies, bins, ...).
- `boundary.py`: the tensors passed from `xai_preprocess` to `xai_model`, and their keys.
- `compose.py`: a Keras preprocessing model, FeatureSpace or layer given as
  `preprocess_fn`, composed with the model.
- `frontier.py`: where to cut: `xai_preprocess` (raw -> first float tensors)
  and `xai_model` (those -> outputs), and the metadata per raw feature.
"""
