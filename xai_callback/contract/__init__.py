"""The explanation-ready contract: checks on signatures and on a written export.

- `checks.py`: the signature rules (serving_default, xai_model, the identity
  `serving_default(x) == xai_model(**xai_preprocess(x))`).
- `probe.py`: the gradient probe along the integrated-gradients path.
- `validation.py`: `validate`, every rule over an export on disk;
  `export_view.py`: what the rules read from it, gathered once.
- `loaded.py`: loading an export so that its gradients work inside
  `tf.function` (recurrent layers' loops).
"""
