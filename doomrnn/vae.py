"""V: the convolutional VAE, in Keras 3 layers and keras.ops (any backend: TF, JAX).

Encoder: (B, 64, 64, 3) -> 4 conv (32/64/128/256 filters, kernel 4, stride 2, relu, valid)
         -> (B, 2, 2, 256) -> flatten (B, 1024) -> mu, logvar (B, z).
Decoder: z (B, z) -> dense 1024 -> (B, 1, 1, 1024) -> 4 transposed conv (128/64/32/3,
         kernels 5/5/6/6, stride 2, relu ... sigmoid) -> (B, 64, 64, 3).
Loss: squared error summed over each image + KL, the KL clipped below at kl_tolerance * z.
"""

import tf_cpu  # noqa: F401  (before keras: oneDNN on every x86-64 CPU)
import keras  # noqa: E402
from keras import layers, ops

from runtime import DEC_FILTERS, DEC_KERNELS, ENC_FILTERS, ENC_KERNEL, vae_shapes


class ConvVAE(keras.Model):
    def __init__(self, z_size=64, kl_tolerance=0.5, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.z_size = z_size
        self.kl_tolerance = kl_tolerance
        self.enc_convs = [layers.Conv2D(f, ENC_KERNEL, strides=2, activation='relu', name='enc_conv%d' % (i + 1))
                          for i, f in enumerate(ENC_FILTERS)]
        self.flatten = layers.Flatten()
        self.fc_mu = layers.Dense(z_size, name='enc_fc_mu')
        self.fc_log_var = layers.Dense(z_size, name='enc_fc_log_var')
        self.dec_fc = layers.Dense(4 * ENC_FILTERS[-1], name='dec_fc')
        self.dec_deconvs = [
            layers.Conv2DTranspose(f, k, strides=2, activation='sigmoid' if i == 3 else 'relu',
                                   name='dec_deconv%d' % (i + 1))
            for i, (f, k) in enumerate(zip(DEC_FILTERS, DEC_KERNELS))]
        self.seed_generator = keras.random.SeedGenerator(seed)

    def encode(self, x):
        """x (B, 64, 64, 3) float in [0, 1] -> mu, logvar (B, z)."""
        for conv in self.enc_convs:
            x = conv(x)
        h = self.flatten(x)
        return self.fc_mu(h), self.fc_log_var(h)

    def decode(self, z):
        """z (B, z) -> (B, 64, 64, 3) in [0, 1]."""
        x = ops.reshape(self.dec_fc(z), (-1, 1, 1, 4 * ENC_FILTERS[-1]))
        for deconv in self.dec_deconvs:
            x = deconv(x)
        return x

    def call(self, x):
        mu, logvar = self.encode(x)
        eps = keras.random.normal(ops.shape(mu), seed=self.seed_generator)
        z = mu + ops.exp(logvar / 2.0) * eps
        y = self.decode(z)
        self.add_loss(vae_loss(x, y, mu, logvar, self.kl_tolerance * self.z_size))
        return y

    def export_arrays(self):
        """Weights in the 2018 vae.json order (kernel, bias per layer)."""
        out = []
        for layer in self.enc_convs + [self.fc_mu, self.fc_log_var, self.dec_fc] + self.dec_deconvs:
            out += [ops.convert_to_numpy(w) for w in (layer.kernel, layer.bias)]
        return out

    def import_arrays(self, arrays):
        expected = [s for _, ks, bs in vae_shapes(self.z_size) for s in (ks, bs)]
        assert [tuple(a.shape) for a in arrays] == expected, 'vae.json does not match z=%d' % self.z_size
        for n, layer in enumerate(self.enc_convs + [self.fc_mu, self.fc_log_var, self.dec_fc] + self.dec_deconvs):
            layer.kernel.assign(arrays[2 * n])
            layer.bias.assign(arrays[2 * n + 1])


def vae_loss(x, y, mu, logvar, kl_min):
    """Mean over the batch of: summed squared error + max(KL, kl_min).  x, y (B, 64, 64, 3)."""
    r_loss = ops.sum(ops.square(x - y), axis=(1, 2, 3))
    kl = -0.5 * ops.sum(1.0 + logvar - ops.square(mu) - ops.exp(logvar), axis=1)
    return ops.mean(r_loss + ops.maximum(kl, kl_min))


def build_vae(z_size=64, kl_tolerance=0.5, seed=0):
    vae = ConvVAE(z_size, kl_tolerance, seed)
    vae(ops.zeros((1, 64, 64, 3)))  # create the weights
    return vae
