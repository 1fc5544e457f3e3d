"""M: the MDN-RNN for CarRacing, in Keras 3 layers and keras.ops (TF or JAX).

Input per step: concat([z (z), action (3)]). The LSTM has ONE kernel on concat([input, h])
with gates i, j, f, o and a forget bias of +1 added at run time (the layout of the 2018
rnn.json). Output per step: z * 3K numbers, per z dimension [logmix (K), mean (K), logstd (K)].
"""

import math

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
import keras  # noqa: E402
from keras import layers, ops

from runtime import FORGET_BIAS


class LSTMCell(layers.Layer):
    """inputs (B, z+3), states [h, c] (B, units)."""

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
        gates = ops.matmul(ops.concatenate([inputs, h], axis=1), self.kernel) + self.bias
        i, j, f, o = ops.split(gates, 4, axis=1)
        c = c * ops.sigmoid(f + FORGET_BIAS) + ops.sigmoid(i) * ops.tanh(j)
        h = ops.tanh(c) * ops.sigmoid(o)
        return h, [h, c]


class MDNRNN(keras.Model):
    """(B, T, z+3) -> (B, T, z*3K)."""

    def __init__(self, z_size=32, units=256, num_mixture=5, **kwargs):
        super().__init__(**kwargs)
        self.z_size, self.units, self.num_mixture = z_size, units, num_mixture
        self.cell = LSTMCell(units)
        self.lstm = layers.RNN(self.cell, return_sequences=True, return_state=True)
        self.out = layers.Dense(z_size * 3 * num_mixture, name='output')

    def call(self, x, return_state=False):
        h, h_last, c_last = self.lstm(x)
        y = self.out(h)
        return (y, h_last, c_last) if return_state else y

    def variables_2018(self):
        return (self.out.kernel, self.out.bias, self.cell.kernel, self.cell.bias)

    def export_arrays(self):
        """[output_w, output_b, lstm_kernel, lstm_bias], the 2018 rnn.json order."""
        return [ops.convert_to_numpy(w) for w in self.variables_2018()]

    def import_arrays(self, arrays):
        for var, a in zip(self.variables_2018(), arrays):
            assert tuple(var.shape) == a.shape, (var.shape, a.shape)
            var.assign(a)


def build_rnn(z_size=32, units=256, num_mixture=5):
    model = MDNRNN(z_size, units, num_mixture)
    model(ops.zeros((1, 1, z_size + 3)))
    return model


def make_loss(z_size, num_mixture=5):
    """Negative log-likelihood of z_next (y_true (B, T, z)) under the mixtures (y_pred (B, T, z*3K)),
    averaged over z dimensions and steps."""
    log_sqrt_2pi = 0.5 * math.log(2 * math.pi)

    def mdn_loss(y_true, y_pred):
        x = ops.reshape(y_true, (-1, z_size, 1))
        params = ops.reshape(y_pred, (-1, z_size, 3 * num_mixture))
        logmix, mean, logstd = ops.split(params, 3, axis=-1)
        logmix = logmix - ops.logsumexp(logmix, axis=-1, keepdims=True)
        log_normal = -0.5 * ops.square((x - mean) / ops.exp(logstd)) - logstd - log_sqrt_2pi
        return -ops.mean(ops.logsumexp(logmix + log_normal, axis=-1))
    return mdn_loss
