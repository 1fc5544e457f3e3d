"""M: the MDN-RNN, in Keras 3 layers and keras.ops (any backend: TF, JAX).

Input per step: concat([z (z), action (1), restart (1)]); where restart = 1 the LSTM state
is zeroed first (a new episode begins). The LSTM has ONE kernel on concat([input, h]) with
gates i, j, f, o and a forget bias of +1 added at run time, the layout of the 2018 rnn.json.
Output per step: 1 + z * 3K numbers: a done (restart) logit, then per z dimension
[logmix (K), mean (K), logstd (K)].
"""

import math

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
import keras  # noqa: E402
from keras import layers, ops

from runtime import FORGET_BIAS


class RestartLSTMCell(layers.Layer):
    """inputs (B, z+2) with restart as the last column, states [h, c] (B, units)."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1] + self.units, 4 * self.units),
                                      initializer='glorot_uniform', name='kernel')
        self.bias = self.add_weight(shape=(4 * self.units,), initializer='zeros', name='bias')

    def call(self, inputs, states):
        h, c = states
        keep = 1.0 - inputs[:, -1:]
        h, c = h * keep, c * keep
        gates = ops.matmul(ops.concatenate([inputs, h], axis=1), self.kernel) + self.bias
        i, j, f, o = ops.split(gates, 4, axis=1)
        c = c * ops.sigmoid(f + FORGET_BIAS) + ops.sigmoid(i) * ops.tanh(j)
        h = ops.tanh(c) * ops.sigmoid(o)
        return h, [h, c]


class MDNRNN(keras.Model):
    """(B, T, z+2) -> (B, T, 1 + z*3K)."""

    def __init__(self, z_size=64, units=512, num_mixture=5, **kwargs):
        super().__init__(**kwargs)
        self.z_size, self.units, self.num_mixture = z_size, units, num_mixture
        self.cell = RestartLSTMCell(units)
        self.lstm = layers.RNN(self.cell, return_sequences=True, return_state=True)
        self.out = layers.Dense(1 + z_size * 3 * num_mixture, name='output')

    def call(self, x, return_state=False):
        h, h_last, c_last = self.lstm(x)
        y = self.out(h)
        return (y, h_last, c_last) if return_state else y

    def export_arrays(self):
        """[lstm_kernel, lstm_bias, output_w, output_b], the 2018 rnn.json order."""
        return [ops.convert_to_numpy(w) for w in (self.cell.kernel, self.cell.bias, self.out.kernel, self.out.bias)]

    def import_arrays(self, arrays):
        for var, a in zip((self.cell.kernel, self.cell.bias, self.out.kernel, self.out.bias), arrays):
            assert tuple(var.shape) == a.shape, (var.shape, a.shape)
            var.assign(a)


def build_rnn(z_size=64, units=512, num_mixture=5):
    model = MDNRNN(z_size, units, num_mixture)
    model(ops.zeros((1, 1, z_size + 2)))
    return model


def make_loss(z_size, num_mixture=5, done_weight=10.0):
    """Loss on y_true (B, T, z+2) = [z_next, done, z_mask] and y_pred (B, T, 1 + z*3K).

    z part: negative log-likelihood of z_next under the per-dimension mixtures, averaged over
    dimensions and the steps whose next frame exists (z_mask). done part: binary
    cross-entropy of the done logit, restarts weighted done_weight times since they are rare.
    """
    log_sqrt_2pi = 0.5 * math.log(2 * math.pi)

    def mdn_rnn_loss(y_true, y_pred):
        y_true = ops.reshape(y_true, (-1, z_size + 2))          # (B*T, z+2)
        y_pred = ops.reshape(y_pred, (-1, 1 + z_size * 3 * num_mixture))
        z_next, done, mask = y_true[:, :z_size], y_true[:, z_size], y_true[:, z_size + 1]
        params = ops.reshape(y_pred[:, 1:], (-1, z_size, 3 * num_mixture))
        logmix, mean, logstd = ops.split(params, 3, axis=-1)
        logmix = logmix - ops.logsumexp(logmix, axis=-1, keepdims=True)
        x = ops.expand_dims(z_next, -1)
        log_normal = -0.5 * ops.square((x - mean) / ops.exp(logstd)) - logstd - log_sqrt_2pi
        nll = -ops.logsumexp(logmix + log_normal, axis=-1)              # (B*T, z)
        z_loss = ops.sum(ops.mean(nll, axis=-1) * mask) / ops.maximum(ops.sum(mask), 1.0)
        logit = y_pred[:, 0]
        bce = ops.maximum(logit, 0) - logit * done + ops.log1p(ops.exp(-ops.abs(logit)))
        weight = 1.0 + (done_weight - 1.0) * done
        done_loss = ops.sum(bce * weight) / ops.sum(weight)
        return z_loss + done_loss
    return mdn_rnn_loss
