"""numpy runtime of the CarRacing world model: what rollout workers, extract.py and model.py run.

No TensorFlow here: V's encoder/decoder, M's LSTM step, MDN sampling and C are numpy.

Weights files keep the 2018 layout: a JSON list of arrays, each value stored as
round(x * 10000). Sizes (z, LSTM units, mixtures) are read from the files.
    vae/vae.json              kernel, bias for enc_conv1..4 (HWIO), enc_fc_mu (1024, z),
                              enc_fc_log_var, dec_fc (z, 1024), dec_deconv1..4 ((h, w, out, in))
    rnn/rnn.json              [output_w (units, z*3K), output_b, lstm_kernel (z+3+units, 4*units), lstm_bias]
    initial_z/initial_z.json  [mu (N, z), logvar (N, z)]
"""

import json
import os
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from estool.atomic import write_atomic

SCALE = 10000.0
FORGET_BIAS = 1.0   # added to the forget gate at run time, as in TF1's LSTM cells
ACTION_SIZE = 3     # steer, gas, brake
ENCODE_ROWS = 32    # V encodes at most this many frames at once; at 128 rows the conv activations
                    # no longer fit in cache and a frame costs ~1.3x as much
ENC_FILTERS, ENC_KERNEL = (32, 64, 128, 256), 4
DEC_FILTERS, DEC_KERNELS = (128, 64, 32, 3), (5, 5, 6, 6)


class WeightsError(ValueError):
    pass


# Trained weights and params stay within a few hundred; a diverged run's nan or inf became
# +-9.2e14 in the integer layout (int64 limits / SCALE). Anything this large is garbage.
MAX_ABS_VALUE = 1e6


def check_values(path, arrays, what='weights'):
    """Refuse non-finite or absurd numbers, in one line naming the file."""
    for i, a in enumerate(arrays):
        a = np.asarray(a, dtype=np.float64)
        if not np.all(np.isfinite(a)):
            raise WeightsError('%s: %s array %d holds nan or inf (a diverged training run?)' % (path, what, i))
        if a.size and np.abs(a).max() > MAX_ABS_VALUE:
            raise WeightsError('%s: %s array %d holds %.3g, beyond %g (a diverged training run?)'
                               % (path, what, i, np.abs(a).max(), MAX_ABS_VALUE))


def vae_shapes(z_size):
    """The 2018 vae.json list: [(name, shape)] for a given z."""
    shapes, c = [], 3
    for i, f in enumerate(ENC_FILTERS):
        shapes += [('enc_conv%d.kernel' % (i + 1), (ENC_KERNEL, ENC_KERNEL, c, f)), ('enc_conv%d.bias' % (i + 1), (f,))]
        c = f
    flat = 4 * ENC_FILTERS[-1]
    shapes += [('enc_fc_mu.kernel', (flat, z_size)), ('enc_fc_mu.bias', (z_size,)),
               ('enc_fc_log_var.kernel', (flat, z_size)), ('enc_fc_log_var.bias', (z_size,)),
               ('dec_fc.kernel', (z_size, flat)), ('dec_fc.bias', (flat,))]
    c = flat
    for i, (f, k) in enumerate(zip(DEC_FILTERS, DEC_KERNELS)):
        shapes += [('dec_deconv%d.kernel' % (i + 1), (k, k, f, c)), ('dec_deconv%d.bias' % (i + 1), (f,))]
        c = f
    return shapes


def rnn_shapes(z_size, units, num_mixture=5):
    return [('output_w', (units, z_size * 3 * num_mixture)), ('output_b', (z_size * 3 * num_mixture,)),
            ('lstm_kernel', (z_size + ACTION_SIZE + units, 4 * units)), ('lstm_bias', (4 * units,))]


def save_json_weights(path, arrays):
    """Write arrays in the 2018 integer layout, atomically."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    check_values(path + ' (not written)', arrays)
    data = [np.round(a * SCALE).astype(np.int64).tolist() for a in arrays]
    write_atomic(path, 'w', lambda f: json.dump(data, f, separators=(',', ':')))   # WriteFailed if it cannot


def load_json_weights(path, made_by):
    """-> list of float32 arrays; raises WeightsError (one line, naming the file)."""
    if not os.path.exists(path):
        raise WeightsError('%s: no such file (made by %s)' % (path, made_by))
    if os.path.isdir(path):
        raise WeightsError('%s is a folder, not a weights file (made by %s)' % (path, made_by))
    try:
        with open(path) as f:
            arrays = [np.asarray(a, dtype=np.float32) / SCALE for a in json.load(f)]
    except OSError as e:
        raise WeightsError('%s: cannot read it (%s)' % (path, e.strerror or e))
    except (ValueError, TypeError) as e:
        raise WeightsError('%s: not a weights file (%s)' % (path, e))
    check_values(path, arrays)
    return arrays


def exit_on_weights_error(fn, *args, **kwargs):
    """Call fn; a WeightsError becomes a one-line exit instead of a traceback."""
    try:
        return fn(*args, **kwargs)
    except WeightsError as e:
        sys.exit(str(e))


def check_shapes(path, arrays, expected):
    if len(arrays) != len(expected):
        raise WeightsError('%s: %d arrays, expected %d' % (path, len(arrays), len(expected)))
    for a, (name, shape) in zip(arrays, expected):
        if a.shape != tuple(shape):
            raise WeightsError('%s: %s has shape %s, expected %s' % (path, name, a.shape, tuple(shape)))


def conv2d(x, kernel, bias, stride=2):
    """'valid' convolution: x (B, H, W, C), kernel (k, k, C, O) -> (B, Ho, Wo, O).
    x may be uint8 frames: they are cut into patches first and then divided by 255 (the same
    floats as dividing first, with a quarter of the bytes to move)."""
    k = kernel.shape[0]
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]   # (B, Ho, Wo, C, k, k)
    b, ho, wo = win.shape[:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(b * ho * wo, -1)
    if cols.dtype == np.uint8:
        cols = cols.astype(np.float32) / 255.0
    out = cols @ kernel.reshape(-1, kernel.shape[-1])
    out += bias
    return out.reshape(b, ho, wo, -1)


def conv2d_transpose(x, kernel, bias, stride=2):
    """'valid' transposed convolution: x (B, H, W, Cin), kernel (k, k, Cout, Cin)
    -> (B, (H-1)*stride + k, (W-1)*stride + k, Cout)."""
    b, h, w, _ = x.shape
    k = kernel.shape[0]
    out = np.zeros((b, (h - 1) * stride + k, (w - 1) * stride + k, kernel.shape[2]), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            out[:, i:i + stride * h:stride, j:j + stride * w:stride] += x @ kernel[i, j].T
    return out + bias


def sigmoid(x):
    with np.errstate(over='ignore'):   # exp(-x) of a very negative x is inf, and 1 / inf its limit, 0
        return 1.0 / (1.0 + np.exp(-x))


def logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


class VAE:
    """V: (B, 64, 64, 3) frames <-> z (B, z)."""

    def __init__(self, arrays, path='vae.json'):
        z_size = arrays[8].shape[1] if len(arrays) > 8 and arrays[8].ndim == 2 else 0
        check_shapes(path, arrays, vae_shapes(z_size))
        self.z_size = z_size
        self.layers = [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]

    @classmethod
    def load(cls, path):
        return cls(load_json_weights(path, 'vae_train.py (tf_vae/vae.json, copied to vae/)'), path)

    @classmethod
    def random(cls, z_size, rng):
        """Glorot-uniform weights, zero biases: the untrained V that extract.py uses."""
        arrays = []
        for name, shape in vae_shapes(z_size):
            if name.endswith('bias'):
                arrays.append(np.zeros(shape, np.float32))
            else:
                fan_in, fan_out = int(np.prod(shape[:-1])), int(np.prod(shape[:-2]) * shape[-1])
                if len(shape) == 2:
                    fan_in, fan_out = shape
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                arrays.append(rng.uniform(-limit, limit, shape).astype(np.float32))
        return cls(arrays)

    def encode_mu_logvar(self, frames):
        """(B, 64, 64, 3) uint8 or float in [0, 1] -> mu, logvar (B, z)."""
        x = np.asarray(frames)
        if len(x) > ENCODE_ROWS:
            parts = [self.encode_mu_logvar(x[i:i + ENCODE_ROWS]) for i in range(0, len(x), ENCODE_ROWS)]
            return np.concatenate([mu for mu, _ in parts]), np.concatenate([lv for _, lv in parts])
        x = x if x.dtype == np.uint8 else x.astype(np.float32)   # conv2d scales uint8 to [0, 1]
        for kernel, bias in self.layers[:4]:
            x = conv2d(x, kernel, bias)
            np.maximum(x, 0, out=x)
        flat = x.reshape(len(x), -1)        # NHWC order, as in the 2018 files
        (w_mu, b_mu), (w_lv, b_lv) = self.layers[4], self.layers[5]
        return flat @ w_mu + b_mu, flat @ w_lv + b_lv

    def encode(self, frames, rng):
        """z = mu + sigma * eps: (B, 64, 64, 3) -> (B, z)."""
        mu, logvar = self.encode_mu_logvar(frames)
        return mu + np.exp(logvar / 2.0) * rng.standard_normal(mu.shape).astype(np.float32)

    def decode(self, z):
        """(B, z) -> (B, 64, 64, 3) float in [0, 1]."""
        w, b = self.layers[6]
        x = (np.asarray(z, np.float32) @ w + b)[:, None, None, :]
        for n, (kernel, bias) in enumerate(self.layers[7:]):
            x = conv2d_transpose(x, kernel, bias)
            x = sigmoid(x) if n == 3 else np.maximum(x, 0)
        return x


class MDNRNN:
    """M: LSTM over concat([z, action, h]) and a mixture-density head over the next z.

    state = (c, h), each (B, units).
    """

    def __init__(self, arrays, path='rnn.json', num_mixture=5):
        if len(arrays) != 4:
            raise WeightsError('%s: %d arrays, expected 4 (output_w, output_b, lstm_kernel, lstm_bias)'
                               % (path, len(arrays)))
        units = arrays[0].shape[0] if arrays[0].ndim == 2 else 0
        z_size = arrays[0].shape[1] // (3 * num_mixture) if arrays[0].ndim == 2 else 0
        check_shapes(path, arrays, rnn_shapes(z_size, units, num_mixture))
        self.out_w, self.out_b, self.kernel, self.bias = arrays
        self.z_size, self.units, self.num_mixture = z_size, units, num_mixture

    @classmethod
    def load(cls, path):
        return cls(load_json_weights(path, 'rnn_train.py (tf_rnn/rnn.json, copied to rnn/)'), path)

    @classmethod
    def random(cls, z_size, units, rng, num_mixture=5):
        arrays = []
        for name, shape in rnn_shapes(z_size, units, num_mixture):
            limit = np.sqrt(6.0 / sum(shape)) if len(shape) == 2 else 0.0
            arrays.append(rng.uniform(-limit, limit, shape).astype(np.float32))
        return cls(arrays)

    def initial_state(self, batch):
        return np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32)

    def step(self, z, action, state):
        """z (B, z), action (B, 3), state (c, h) -> new state (c, h)."""
        c, h = state
        gates = np.concatenate([z, action, h], axis=1) @ self.kernel + self.bias
        i, j, f, o = np.split(gates, 4, axis=1)
        c = c * sigmoid(f + FORGET_BIAS) + sigmoid(i) * np.tanh(j)
        return c, np.tanh(c) * sigmoid(o)

    def mixture(self, h):
        """h (B, units) -> logmix (log-softmax over K), mean, logstd, each (B, z, K)."""
        params = (h @ self.out_w + self.out_b).reshape(len(h), self.z_size, 3 * self.num_mixture)
        logmix, mean, logstd = np.split(params, 3, axis=2)
        return logmix - logsumexp(logmix, axis=2), mean, logstd


def sample_mdn(logmix, mean, logstd, temperature, rng):
    """One z per row from per-dimension Gaussian mixtures: (B, z, K) each -> (B, z).
    Temperature flattens the weights (logmix / tau) and widens each Gaussian (std * sqrt(tau))."""
    logits = logmix / temperature
    probs = np.exp(logits - logsumexp(logits, axis=2))
    u = rng.random(probs.shape[:2] + (1,))
    k = np.minimum((u > np.cumsum(probs, axis=2)).sum(axis=2, keepdims=True), probs.shape[2] - 1)
    mu = np.take_along_axis(mean, k, axis=2)[..., 0]
    sd = np.exp(np.take_along_axis(logstd, k, axis=2)[..., 0]) * np.sqrt(temperature)
    return (mu + sd * rng.standard_normal(mu.shape)).astype(np.float32)


def load_initial_z(path):
    """-> mu, logvar (N, z) float32."""
    arrays = load_json_weights(path, 'rnn_train.py (tf_initial_z/initial_z.json, copied to initial_z/)')
    if len(arrays) != 2 or arrays[0].ndim != 2 or arrays[0].shape != arrays[1].shape:
        raise WeightsError('%s: expected [mu (N, z), logvar (N, z)]' % path)
    return arrays[0], arrays[1]


class Controller:
    """C: a = tanh(W [z, h] + b); params = 3 biases, then W (z + units, 3) row-major.
    Steering stays in [-1, 1], gas is mapped to [0, 1], brake clipped to [0, 1]."""

    def __init__(self, z_size, units):
        self.input_size = z_size + units
        self.num_params = ACTION_SIZE + self.input_size * ACTION_SIZE

    def set_params(self, params):
        params = np.asarray(params, np.float32)
        self.bias = params[:ACTION_SIZE]
        self.weight = params[ACTION_SIZE:].reshape(self.input_size, ACTION_SIZE)

    def act(self, z, h):
        """(B, z), (B, units) -> actions (B, 3)."""
        return self._squash(np.tanh(np.concatenate([z, h], axis=1) @ self.weight + self.bias))

    @staticmethod
    def act_batch(z, h, weight, bias):
        """Each row its own controller: z (B, z), h (B, units), weight (B, z + units, 3),
        bias (B, 3) -> actions (B, 3)."""
        x = np.concatenate([z, h], axis=1)[:, None, :]
        return Controller._squash(np.tanh(np.matmul(x, weight)[:, 0] + bias))

    @staticmethod
    def _squash(a):
        a[:, 1] = (a[:, 1] + 1.0) / 2.0
        a[:, 2] = np.clip(a[:, 2], 0.0, 1.0)
        return a


def load_params(path, num_params, gen=None):
    """A controller log's params -> (num_params,): the first entry of [params] or [params, reward]
    (.json, .best.json), or with gen, the mean evaluated at that generation in a .log.json
    (rows [gen, eval_reward, params])."""
    if not os.path.exists(path):
        raise WeightsError('%s: no such file (made by train.py in log/); expected %d params' % (path, num_params))
    if os.path.isdir(path):
        raise WeightsError('%s is a folder, not a params file (made by train.py in log/)' % path)
    try:
        with open(path) as f:
            data = json.load(f)
        rows = None if gen is None else {int(row[0]): row[2] for row in data}
        params = np.asarray(data[0] if gen is None else rows.get(gen, []), dtype=np.float32)
    except OSError as e:
        raise WeightsError('%s: cannot read it (%s)' % (path, e.strerror or e))
    except (ValueError, TypeError, IndexError, KeyError) as e:
        if gen is not None:
            expected = 'rows [gen, eval_reward, params], as in a .log.json'
        elif path.endswith('.log.json'):
            expected = '[params (%d), ...]; a .log.json needs a generation (model.py --gen)' % num_params
        else:
            expected = '[params (%d), ...]' % num_params
        raise WeightsError('%s: malformed (%s); expected %s' % (path, type(e).__name__, expected))
    if gen is not None and gen not in rows:
        raise WeightsError('%s: no evaluation at generation %d (logged: %s)' % (
            path, gen, ', '.join(map(str, sorted(rows))) or 'none'))
    if params.ndim != 1:
        raise WeightsError('%s: params of shape %s, expected a flat list of %d' % (path, params.shape, num_params))
    if params.shape != (num_params,):
        raise WeightsError('%s: %d params, expected %d (3 + 3 * (z + LSTM units))' % (path, params.size, num_params))
    check_values(path, [params], 'params')
    return params
