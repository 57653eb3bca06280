"""What both Keras adapters share: delegating `fit` events to `ExportPolicy`.

An adapter is this mixin plus the Callback base class of one Keras (Keras 3
or tf-keras) and that Keras' serialization registration, nothing more.
"""

from xai_callback.callbacks.policy import ExportPolicy


class PolicyCallback:
    """Mixin: a Keras callback whose behaviour is all in `self.policy`."""

    def __init__(self, export_dir, **kwargs):
        super().__init__()
        self.policy = ExportPolicy(export_dir, **kwargs)

    @property
    def export_dir(self):
        return self.policy.export_dir

    @property
    def last_export(self):
        """The `ExportResult` of the latest export of this fit, or None."""
        return self.policy.last_export

    @property
    def best_epoch(self):
        """0-based epoch (within its fit) of the best monitored value so far, or None."""
        return self.policy.best_epoch

    @property
    def best(self):
        """The best monitored value so far (kept across fits until `reset()`), or None."""
        return self.policy.best

    def reset(self):
        """Forgets the best value of earlier fits (and of exports already at `export_dir`).

        Like a fresh `ModelCheckpoint`: the next `fit` exports its own best
        whatever was exported before. Without it, a second `fit` with the same
        callback exports only epochs that beat the first fit's best.
        """
        self.policy.reset()

    def get_config(self):
        return self.policy.get_config()

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def on_train_begin(self, logs=None):
        self.policy.on_train_begin(self.model, self.params)

    def on_epoch_end(self, epoch, logs=None):
        self.policy.on_epoch_end(self.model, epoch, logs)

    def on_train_end(self, logs=None):
        self.policy.on_train_end(self.model)
