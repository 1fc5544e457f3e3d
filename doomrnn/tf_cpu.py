"""Turn on TensorFlow's oneDNN CPU kernels on every x86-64 CPU. Import before keras or tensorflow.

TensorFlow enables oneDNN by default only where the CPU has AVX-512-class features; on an
AVX2 CPU (AMD EPYC, older Intel) it falls back to its own kernels, and V trained 4-5x slower
(49 against 221 images per second on a 2-core AMD EPYC; bench.py times both). oneDNN's
kernels are deterministic for a fixed thread count, so --resume still gives the weights of a
straight run. A value the user has set (TF_ENABLE_ONEDNN_OPTS=0 to compare) is left alone.
"""

import os
import platform

if platform.machine().lower() in ('x86_64', 'amd64'):
    os.environ.setdefault('TF_ENABLE_ONEDNN_OPTS', '1')
