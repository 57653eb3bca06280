"""The automatic split of Keras preprocessing layers (TensorFlow backend).

- `graph.py`: reading and running a Keras 3 functional graph node by node.
- `layers.py`: what each preprocessing layer encodes (vocabularies, bins, ...).
- `frontier.py`: where to cut: `xai_preprocess` (raw -> first float tensors)
  and `xai_model` (those -> outputs), and the metadata per raw feature.
"""
