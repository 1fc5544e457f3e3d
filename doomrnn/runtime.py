"""numpy runtime of the DoomRNN world model: what rollout workers and model.py run.

No TensorFlow here: V's encoder/decoder, M's LSTM step, MDN sampling and C are numpy, so a
worker steps a whole batch of episodes with one matrix product per step.

Weights files keep the 2018 layout: a JSON list of arrays, each value stored as
round(x * 10000). Sizes (z, LSTM units, mixtures) are read from the files.
    vae.json        kernel, bias for enc_conv1..4 (HWIO), enc_fc_mu (1024, z), enc_fc_log_var,
                    dec_fc (z, 1024), dec_deconv1..4 (kernel (h, w, out, in))
    rnn.json        [lstm_kernel (z+2+units, 4*units), lstm_bias (4*units),
                     output_w (units, 1 + z*3*K), output_b]
    initial_z.json  [mu (N, z), logvar (N, z)]
"""

import json
import os
import sys

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from estool.argtypes import input_dir, input_file
from estool.atomic import write_atomic

SCALE = 10000.0
FORGET_BIAS = 1.0   # added to the forget gate at run time, as in TF1's LSTM cells
ACTION_SIZE = 1     # TakeCover's one action: left or right, in [-1, 1]
ENC_FILTERS, ENC_KERNEL = (32, 64, 128, 256), 4
DEC_FILTERS, DEC_KERNELS = (128, 64, 32, 3), (5, 5, 6, 6)


class WeightsError(ValueError):
    pass


MODELS = 'tf_models'
WORLD_FILES = ('vae', 'rnn', 'initial_z')
WORLD_FILE_HELP = {'vae': "V's weights", 'rnn': "M's weights", 'initial_z': "the dream's starting z's"}


def world_paths(models=MODELS, **files):
    """-> {'vae': path, 'rnn': path, 'initial_z': path}. models: a folder holding vae.json,
    rnn.json and initial_z.json, or such a dict; files (vae=, rnn=, initial_z=): paths that
    replace those of models where not None (a world model kept under other names, such as
    tf_models/vae_run1.json)."""
    if isinstance(models, dict):
        paths = dict(models)
    else:
        paths = {name: os.path.join(models, name + '.json') for name in WORLD_FILES}
    paths.update({name: path for name, path in files.items() if path is not None})
    return paths


def add_world_arguments(p, files=WORLD_FILES, when=''):
    """--models FOLDER and, for each of files, --<name> FILE in its place; when prefixes the help."""
    p.add_argument('--models', type=input_dir, default=MODELS,
                   help='%sfolder with %s (default: %%(default)s)' % (when, ', '.join(name + '.json' for name in files)))
    for name in files:
        p.add_argument('--' + name, type=input_file,
                       help='%s%s in place of --models/%s.json (for a world model kept under other '
                            'names)' % (when, WORLD_FILE_HELP[name], name))


def args_world(args):
    """The world_paths of add_world_arguments' flags."""
    return world_paths(args.models, **{name: getattr(args, name, None) for name in WORLD_FILES})


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


def vae_shapes(z_size, in_channels=3):
    """The 2018 vae.json layer list: [(name, kernel_shape, bias_shape)] for a given z."""
    shapes, c = [], in_channels
    for i, f in enumerate(ENC_FILTERS):
        shapes.append(('enc_conv%d' % (i + 1), (ENC_KERNEL, ENC_KERNEL, c, f), (f,)))
        c = f
    flat = 2 * 2 * ENC_FILTERS[-1]
    shapes.append(('enc_fc_mu', (flat, z_size), (z_size,)))
    shapes.append(('enc_fc_log_var', (flat, z_size), (z_size,)))
    shapes.append(('dec_fc', (z_size, flat), (flat,)))
    c = flat
    for i, (f, k) in enumerate(zip(DEC_FILTERS, DEC_KERNELS)):
        shapes.append(('dec_deconv%d' % (i + 1), (k, k, f, c), (f,)))
        c = f
    return shapes


def rnn_shapes(z_size, units, num_mixture=5, action_size=ACTION_SIZE):
    return [('lstm_kernel', (z_size + action_size + 1 + units, 4 * units)),
            ('lstm_bias', (4 * units,)),
            ('output_w', (units, 1 + z_size * 3 * num_mixture)),
            ('output_b', (1 + z_size * 3 * num_mixture,))]


def save_json_weights(path, arrays):
    """Write arrays as the 2018 integer layout, atomically."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    check_values(path + ' (not written)', arrays)
    data = [np.round(a * SCALE).astype(np.int64).tolist() for a in arrays]
    write_atomic(path, 'w', lambda f: json.dump(data, f, separators=(',', ':')))   # WriteFailed if it cannot


def load_json_weights(path, made_by):
    """-> list of float32 arrays; raises WeightsError with one line naming the file."""
    if not os.path.exists(path):
        raise WeightsError('%s: no such file (made by %s)' % (path, made_by))
    if os.path.isdir(path):
        raise WeightsError('%s is a folder, not a weights file (made by %s)' % (path, made_by))
    try:
        with open(path) as f:
            data = json.load(f)
        arrays = [np.asarray(a, dtype=np.float32) / SCALE for a in data]
    except OSError as e:
        raise WeightsError('%s: cannot read it (%s)' % (path, e.strerror or e))
    except (ValueError, TypeError) as e:
        raise WeightsError('%s: not a weights file (%s)' % (path, e))
    check_values(path, arrays)
    return arrays


def exit_on_weights_error(fn, *args, **kwargs):
    """Call fn; a WeightsError becomes a one-line exit, not a traceback."""
    try:
        return fn(*args, **kwargs)
    except WeightsError as e:
        sys.exit(str(e))


def _check(path, arrays, expected):
    if len(arrays) != len(expected):
        raise WeightsError('%s: %d arrays, expected %d' % (path, len(arrays), len(expected)))
    for a, (name, shape) in zip(arrays, expected):
        if a.shape != tuple(shape):
            raise WeightsError('%s: %s has shape %s, expected %s' % (path, name, a.shape, tuple(shape)))


def conv2d(x, kernel, bias, stride=2):
    """'valid' convolution. x (B, H, W, C), kernel (k, k, C, O) -> (B, Ho, Wo, O)."""
    k = kernel.shape[0]
    win = sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]  # (B, Ho, Wo, C, k, k)
    b, ho, wo = win.shape[:3]
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(b * ho * wo, -1)
    return (cols @ kernel.reshape(-1, kernel.shape[-1]) + bias).reshape(b, ho, wo, -1)


def conv2d_transpose(x, kernel, bias, stride=2):
    """'valid' transposed convolution. x (B, H, W, Cin), kernel (k, k, Cout, Cin)
    -> (B, (H-1)*stride + k, (W-1)*stride + k, Cout)."""
    b, h, w, _ = x.shape
    k = kernel.shape[0]
    out = np.zeros((b, (h - 1) * stride + k, (w - 1) * stride + k, kernel.shape[2]), dtype=x.dtype)
    for i in range(k):
        for j in range(k):
            out[:, i:i + stride * h:stride, j:j + stride * w:stride] += x @ kernel[i, j].T
    return out + bias


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    with np.errstate(over='ignore'):   # exp(-x) of a very negative x is inf, and 1 / inf its limit, 0
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_(x):
    """sigmoid in place, with the same roundings as sigmoid()."""
    np.negative(x, out=x)
    np.exp(x, out=x)
    x += 1.0
    np.divide(1.0, x, out=x)


class VAE:
    """V: 64x64x3 frames <-> z. Sizes come from the weights."""

    def __init__(self, arrays, path='vae.json'):
        z_size = arrays[8].shape[1] if len(arrays) > 8 and arrays[8].ndim == 2 else 0
        _check(path, arrays, [(n + s, shape) for n, ks, bs in vae_shapes(z_size)
                              for s, shape in (('.kernel', ks), ('.bias', bs))])
        self.z_size = z_size
        self.enc = [(arrays[2 * i], arrays[2 * i + 1]) for i in range(4)]
        self.fc_mu, self.fc_logvar, self.dec_fc = (arrays[8], arrays[9]), (arrays[10], arrays[11]), (arrays[12], arrays[13])
        self.dec = [(arrays[14 + 2 * i], arrays[15 + 2 * i]) for i in range(4)]

    @classmethod
    def load(cls, path):
        return cls(load_json_weights(path, 'vae_train.py (tf_vae/vae.json, copied to tf_models/)'), path)

    def encode_mu_logvar(self, frames):
        """frames (B, 64, 64, 3) uint8 or float in [0, 1] -> mu, logvar (B, z)."""
        x = np.asarray(frames, dtype=np.float32)
        if np.asarray(frames).dtype == np.uint8:
            x = x / 255.0
        for kernel, bias in self.enc:
            x = relu(conv2d(x, kernel, bias))
        flat = x.reshape(len(x), -1)  # NHWC order, as in the 2018 files
        return flat @ self.fc_mu[0] + self.fc_mu[1], flat @ self.fc_logvar[0] + self.fc_logvar[1]

    def encode(self, frames, rng):
        """Sample z = mu + sigma * eps: (B, 64, 64, 3) -> (B, z)."""
        mu, logvar = self.encode_mu_logvar(frames)
        return mu + np.exp(logvar / 2.0) * rng.standard_normal(mu.shape).astype(np.float32)

    def decode(self, z):
        """z (B, z) -> frames (B, 64, 64, 3) float in [0, 1]."""
        x = (np.asarray(z, dtype=np.float32) @ self.dec_fc[0] + self.dec_fc[1])[:, None, None, :]
        for n, (kernel, bias) in enumerate(self.dec):
            x = conv2d_transpose(x, kernel, bias)
            x = sigmoid(x) if n == len(self.dec) - 1 else relu(x)
        return x


class MDNRNN:
    """M: LSTM over concat([z, action, restart, h]) and a mixture-density head.

    state = (c, h), each (B, units). step() -> (mixture params, done logit, new state).
    """

    def __init__(self, arrays, path='rnn.json', num_mixture=5, action_size=ACTION_SIZE):
        if len(arrays) != 4:
            raise WeightsError('%s: %d arrays, expected 4 (lstm_kernel, lstm_bias, output_w, output_b)'
                               % (path, len(arrays)))
        units = arrays[0].shape[1] // 4 if arrays[0].ndim == 2 else 0
        z_size = (arrays[2].shape[1] - 1) // (3 * num_mixture) if arrays[2].ndim == 2 else 0
        _check(path, arrays, rnn_shapes(z_size, units, num_mixture, action_size))
        self.kernel, self.bias, self.out_w, self.out_b = arrays
        self.z_size, self.units, self.num_mixture = z_size, units, num_mixture

    @classmethod
    def load(cls, path):
        return cls(load_json_weights(path, 'rnn_train.py (tf_rnn/rnn.json, copied to tf_models/)'), path)

    def initial_state(self, batch):
        return np.zeros((batch, self.units), np.float32), np.zeros((batch, self.units), np.float32)

    def lstm(self, z, action, restart, state, gates=None):
        """The recurrent part alone: z (B, z), action (B, 1), restart (B, 1) in {0, 1},
        state (c, h) -> new state (c, h), each (B, units). gates: optional (B, 4 * units)
        float32 scratch array (a loop that steps many times reuses one: it stays in cache)."""
        c, h = state
        if restart.any():   # a restart starts a new episode: forget the old one
            keep = 1.0 - restart
            c, h = c * keep, h * keep
        gates = np.matmul(np.concatenate([z, action, restart, h], axis=1), self.kernel, out=gates)
        gates += self.bias
        u = self.units
        i, j, f, o = gates[:, :u], gates[:, u:2 * u], gates[:, 2 * u:3 * u], gates[:, 3 * u:]
        f += FORGET_BIAS
        sigmoid_(i)
        sigmoid_(gates[:, 2 * u:])    # f and o: one pass
        np.tanh(j, out=j)
        c = c * f
        j *= i
        c += j
        h = np.tanh(c)
        h *= o
        return c, h

    def step(self, z, action, restart, state):
        """z (B, z), action (B, 1), restart (B, 1) in {0, 1}, state (c, h) ->
        (logmix, mean, logstd each (B, z, K), done_logit (B,), (c, h))."""
        c, h = self.lstm(z, action, restart, state)
        logmix, mean, logstd, done = self.head(h)
        return logmix, mean, logstd, done, (c, h)

    def sample(self, h, temperature, rng, out=None):
        """The next z drawn from the head at h, for the dream: h (B, units) ->
        z (B, z), done logit (B,). The same law as sample_mdn(*head(h)[:3]), without the
        log-softmax that sampling does not need. out: optional (B, 1 + 3 * K * z) scratch."""
        out = np.matmul(h, self.out_w, out=out)
        out += self.out_b
        k = self.num_mixture
        params = out[:, 1:].reshape(len(h), self.z_size, 3 * k)
        return sample_mdn(params[..., :k], params[..., k:2 * k], params[..., 2 * k:], temperature, rng), out[:, 0]

    def head(self, h):
        """h (B, units) -> logmix (log-softmax over K), mean, logstd (B, z, K), done logit (B,)."""
        out = h @ self.out_w + self.out_b
        params = out[:, 1:].reshape(len(h), self.z_size, 3 * self.num_mixture)
        logmix, mean, logstd = np.split(params, 3, axis=2)
        logmix = logmix - logsumexp(logmix, axis=2)
        return logmix, mean, logstd, out[:, 0]


def logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


def sample_mdn(logmix, mean, logstd, temperature, rng):
    """One z per row from per-dimension Gaussian mixtures: (B, z, K) each -> (B, z) float32.

    Temperature flattens the mixture weights (logmix / tau) and widens each Gaussian
    (std * sqrt(tau)), which makes the dream harder for the controller. logmix need not be
    normalised: the component is drawn by inverse CDF on the unnormalised weights. With few
    components, a loop over them (whole (B, z) arrays each) beats numpy's reductions over
    a short last axis.
    """
    num = logmix.shape[2]
    top = logmix[..., 0].copy()
    for k in range(1, num):
        np.maximum(top, logmix[..., k], out=top)
    inv_tau = np.float32(1.0 / temperature)
    cum = np.empty((num,) + top.shape, np.float32)       # cum[k]: weight of components 0..k
    for k in range(num):
        w = logmix[..., k] - top
        w *= inv_tau
        np.exp(w, out=w)
        cum[k] = w if k == 0 else cum[k - 1] + w
    u = rng.random(top.shape, dtype=np.float32)
    u *= cum[-1]
    pick = np.zeros(top.shape, np.intp)
    for k in range(num - 1):
        pick += u > cum[k]
    mu = np.take_along_axis(mean, pick[..., None], axis=2)[..., 0]
    sd = np.exp(np.take_along_axis(logstd, pick[..., None], axis=2)[..., 0])
    sd *= np.float32(np.sqrt(temperature))
    sd *= rng.standard_normal(mu.shape, dtype=np.float32)
    return mu + sd


def load_initial_z(path):
    """-> mu, logvar (N, z) float32."""
    arrays = load_json_weights(path, 'rnn_train.py (tf_initial_z/initial_z.json, copied to tf_models/)')
    if len(arrays) != 2 or arrays[0].ndim != 2 or arrays[0].shape != arrays[1].shape:
        raise WeightsError('%s: expected [mu (N, z), logvar (N, z)]' % path)
    return arrays[0], arrays[1]


class Controller:
    """C: action = tanh(W [z, c, h]), no bias; params are W in input order [z, c, h]."""

    def __init__(self, z_size, units):
        self.input_size = z_size + 2 * units
        self.num_params = self.input_size

    def set_params(self, params):
        self.weight = np.asarray(params, dtype=np.float32).reshape(self.input_size, 1)

    def act(self, z, c, h):
        """(B, z), (B, units), (B, units) -> action (B, 1) in [-1, 1]."""
        return np.tanh(np.concatenate([z, c, h], axis=1) @ self.weight)

    @staticmethod
    def act_batch(weights, z, c, h):
        """Each row its own controller, given as a row of weights (B, input_size) -> (B, 1)."""
        x = np.concatenate([z, c, h], axis=1)
        return np.tanh(np.einsum('bi,bi->b', x, weights))[:, None]


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
        raise WeightsError('%s: %d params, expected %d (z + 2 * LSTM units of rnn.json)'
                           % (path, params.size, num_params))
    check_values(path, [params], 'params')
    return params
