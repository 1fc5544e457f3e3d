"""Pin the CPU kernels of numpy and OpenBLAS to AVX2, so a replay scores the same on any x86-64 CPU.

A CarRacing episode is chaotic: a difference in the last bit of z or h can change the car's
path a few hundred steps later. numpy's loops and OpenBLAS (bundled with numpy) choose their
kernels for the CPU at hand, and AVX-512 kernels round and add in another order than AVX2
ones, so one agent scored 685.61 over tracks 0-99 on an AVX-512 machine and 679.29 on an
AVX2 one. Import this module before numpy; variables the user has set are left alone.
"""

import os
import platform

if platform.machine().lower() in ('x86_64', 'amd64'):
    os.environ.setdefault('OPENBLAS_CORETYPE', 'Haswell')   # OpenBLAS's AVX2 kernels
    os.environ.setdefault('NPY_DISABLE_CPU_FEATURES', 'X86_V4 AVX512_ICL AVX512_SPR')
