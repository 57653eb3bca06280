"""Small real Keras callbacks the crash-safety, metrics and bad-input tests share."""

import keras


class BatchCounter(keras.callbacks.Callback):
    """Counts training batches, to prove a check ran before the first one."""

    def __init__(self):
        super().__init__()
        self.batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.batches += 1


class InjectMonitor(keras.callbacks.Callback):
    """Puts given values under `key` in the epoch logs (place it before the export callback)."""

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
