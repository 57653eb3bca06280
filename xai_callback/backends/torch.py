"""PyTorch backend: the TensorFlow subprocess route.

Keras' own torch export (`ExportArchive` on torch) goes through
`torch.export` and torch_xla's StableHLO, which needs torch_xla (Linux only,
pinned to older torch releases) and gives a function without a TensorFlow
gradient, so it cannot be `xai_model`. The model rebuilt from its Keras config
on the TensorFlow backend gives an ordinary TensorFlow graph (`tf_subprocess.py`).
"""

import numpy as np

from xai_callback.backends.tf_subprocess import SubprocessConverter


def live_gradients(call, values, keys):
    """torch autograd of the sum of the floating outputs of `call(**values)`."""
    import keras
    import torch

    tensors = {k: keras.ops.convert_to_tensor(v) for k, v in values.items()}
    for key in keys:
        tensors[key] = tensors[key].detach().requires_grad_(True)
    outputs = [x for x in keras.tree.flatten(call(**tensors)) if x.is_floating_point()]
    total = sum(x.sum() for x in outputs)
    grads = torch.autograd.grad(total, [tensors[k] for k in keys], allow_unused=True)
    return {
        k: np.zeros(np.shape(values[k])) if g is None else g.detach().cpu().numpy()
        for k, g in zip(keys, grads)
    }


def converter(model, **tolerances):
    return SubprocessConverter(model, live_gradients, backend="torch", **tolerances)
