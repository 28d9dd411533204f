"""binas's native 1-bit conv kernels (``kernels/bitconv.c``): built with the system C compiler on first use.

The library is compiled once per machine (``-O3 -march=native``, with OpenMP where the compiler has it) into
a cache directory (``$BINAS_KERNEL_CACHE``, else ``~/.cache/binas/kernels``), keyed by the source, the flags,
the compiler and the CPU, and loaded with `ctypes`: no PyTorch headers, so a build takes about a second.
``python -m binas.export.kernels`` builds it ahead of time (`scripts/install.sh` does). Where no compiler is
found or the build fails, `available()` is False and the deployed convs use another engine.

The functions here take and return channels_last tensors; `binas.export.integer_conv` decides the forms.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import weakref
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

log = logging.getLogger(__name__)

#: Output forms of a native conv (the kernel's `mode`).
VALUE, SIGN, ACC, BITS = 0, 1, 2, 3
#: The dtype of a sign-bits map (N, H, W, words): uint64 words stored as int64.
BITS_DTYPE = torch.int64
MAX_CHANNELS = 4096  # the kernels' per-pixel buffers (kernels/bitconv.c)
MAX_ROW = 32768  # output width x channels: the kernels' per-row buffers
MAX_DEPTHWISE_TAPS = 63  # int8 sums in the depth-wise kernel
#: A dense conv uses byte tables (taps x input bytes x 256 x outputs) up to this size, XNOR-popcount above it
#: (`benchmarks/native_kernels.py`, AVX2: tables 1.6-2.5x faster for 16-128 input channels, even at 256).
MAX_TABLE_BYTES = 256 * 1024
_FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c99")


def _source() -> bytes:
    return resources.files("binas.export.kernels").joinpath("bitconv.c").read_bytes()


def _cpu_identity() -> str:
    """What `-march=native` depends on: the CPU model and its flags."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [line for line in lines if line.startswith(("model name", "flags"))]
    return "\n".join(dict.fromkeys(keep))


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def cache_dir() -> Path:
    return Path(os.environ.get("BINAS_KERNEL_CACHE") or Path.home() / ".cache" / "binas" / "kernels")


def _compile(cc: str, source: Path, target: Path, openmp: bool) -> bool:
    flags = [*_FLAGS, "-fopenmp"] if openmp else list(_FLAGS)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    result = subprocess.run([cc, *flags, "-o", str(tmp), str(source)], capture_output=True, text=True)
    if result.returncode != 0:
        log.debug("native kernel build failed (%s): %s", " ".join(flags), result.stderr.strip()[-500:])
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, target)  # atomic: parallel builders (test workers) never load a half-written file
    return True


def build(force: bool = False) -> Path | None:
    """Compile the kernels for this machine (cached); the library's path, or None without a working compiler."""
    cc = _compiler()
    if cc is None:
        log.debug("no C compiler found: the native 1-bit kernels are not available")
        return None
    source = _source()
    key = hashlib.sha256(b"\0".join([source, " ".join(_FLAGS).encode(), cc.encode(), _cpu_identity().encode()]))
    target = cache_dir() / f"bitconv-{key.hexdigest()[:20]}.so"
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "bitconv.c"
        src.write_bytes(source)
        if _compile(cc, src, target, openmp=True) or _compile(cc, src, target, openmp=False):
            return target
    return None


_I64, _I32, _P = ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p
_GEOMETRY: list[Any] = [_I64] * 10  # kh, kw, sh, sw, ph, pw, dh, dw, OH, OW
_TAIL: list[Any] = [_I32, _P, _P, _P, _P, _I32]  # mode, scale, shift, thr, out, nthreads


@lru_cache(maxsize=1)
def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None where they cannot be built (``BINAS_NATIVE=0`` turns them off)."""
    if os.environ.get("BINAS_NATIVE", "1") == "0":
        return None
    try:
        path = build()
        try:
            lib = ctypes.CDLL(str(path)) if path is not None else None
        except OSError:  # a damaged cached build (e.g. truncated): build it again, once
            path = build(force=True)
            lib = ctypes.CDLL(str(path)) if path is not None else None
    except OSError as error:  # a cache the user cannot write, a library the loader rejects
        log.debug("native kernels unavailable: %s", error)
        return None
    if lib is None:
        return None
    lib.binas_pack_f32.argtypes = [_P, _P, _I64, _I64, _I64, _I32]
    lib.binas_pack_i8.argtypes = [_P, _P, _I64, _I64, _I64, _I32]
    lib.binas_pack_f32_at.argtypes = [_P, _P, _I64, _I64, _I64, _I64, _I32]
    lib.binas_max_pool_f32.argtypes = [_P, *[_I64] * 12, _P, _I32]
    lib.binas_conv_1x1_node.argtypes = [_P, *[_I64] * 5, _P, *[_I64] * 5, _P, _P, _P, _P, _P, _I64, _I64, _I32]
    lib.binas_conv_1x1_node.restype = _I32
    lib.binas_conv_dense.argtypes = [_P, _I64, _I64, _I64, _I64, _I64, _P, _I64, *_GEOMETRY, *_TAIL]
    lib.binas_conv_dense_lut.argtypes = lib.binas_conv_dense.argtypes
    lib.binas_conv_depthwise.argtypes = [_P, _I32, _P, _I64, _I64, _I64, _I64, _P, *_GEOMETRY, *_TAIL]
    for fn in (lib.binas_pack_f32, lib.binas_pack_i8, lib.binas_pack_f32_at):
        fn.restype = None
    lib.binas_conv_dense.restype = lib.binas_max_pool_f32.restype = None
    lib.binas_conv_dense_lut.restype = lib.binas_conv_depthwise.restype = None
    return lib


def available() -> bool:
    return library() is not None


def _lib() -> ctypes.CDLL:
    lib = library()
    if lib is None:
        raise RuntimeError("binas's native kernels are not available (no C compiler, or BINAS_NATIVE=0)")
    return lib


#: Output buffers of the kernels, reused once nothing references them: on the CPUs measured, the fresh pages
#: of a new multi-MB tensor (page faults and zeroing) cost more than many of the kernels that fill them (a
#: batch-64 forward of the benchmark network: 151 ms -> 102 ms with a malloc that keeps freed memory).
_POOL: dict[tuple[tuple[int, ...], torch.dtype, bool], list[Tensor]] = {}
_POOL_LOCK = threading.Lock()
_POOL_PER_SHAPE = 16
#: Bytes the pool may hold in all (``BINAS_NATIVE_POOL_MB``, default 1024): beyond, buffers are not kept.
_POOL_BYTES = [0]
_use_count = getattr(torch._C, "_storage_Use_Count", None)  # PyTorch's count of tensors on a storage


def empty(shape: tuple[int, ...], dtype: torch.dtype, channels_last: bool = False) -> Tensor:
    """An uninitialized tensor for a kernel's output, from the pool of buffers no tensor references any more
    (``BINAS_NATIVE_POOL=0``: always a new one). The caller gets its own view: while it, or any view of it,
    lives, the buffer is not handed out again."""

    def new() -> Tensor:
        if channels_last:
            return torch.empty(shape, dtype=dtype, memory_format=torch.channels_last)
        return torch.empty(shape, dtype=dtype)

    if _use_count is None or os.environ.get("BINAS_NATIVE_POOL", "1") == "0":
        return new()
    key = (tuple(int(d) for d in shape), dtype, channels_last)
    # normal tensors even under `torch.inference_mode` (a buffer serves calls in and out of it, and an
    # inference tensor may not be changed in place outside it)
    with _POOL_LOCK, torch.inference_mode(False):
        buffers = _POOL.setdefault(key, [])
        for buffer in buffers:
            if _use_count(buffer.untyped_storage()._cdata) == 2:  # the pool's tensor and this storage object
                return buffer.as_strided(buffer.size(), buffer.stride())
        buffer = new()
        size = buffer.numel() * buffer.element_size()
        limit = int(float(os.environ.get("BINAS_NATIVE_POOL_MB", "1024")) * 2**20)
        if len(buffers) < _POOL_PER_SHAPE and _POOL_BYTES[0] + size <= limit:
            buffers.append(buffer)
            _POOL_BYTES[0] += size
            return buffer.as_strided(buffer.size(), buffer.stride())
        return buffer


def release_pool() -> None:
    """Drop the pooled buffers (memory in use stays with the tensors that hold it)."""
    with _POOL_LOCK:
        _POOL.clear()
        _POOL_BYTES[0] = 0


def words(channels: int) -> int:
    """uint64 words per pixel of sign bits."""
    return (channels + 63) // 64


def nhwc(x: Tensor) -> Tensor:
    """`x` (N, C, H, W) with channels_last storage."""
    return x.contiguous(memory_format=torch.channels_last)


class _SignCache(threading.local):
    """The sign bits last computed from float maps: a DARTS state feeds several 1-bit convs (the stem's
    output three), each of which would otherwise sign the same map again. An entry is used only
    for the very tensor it came from (a weak reference) at the same version (no in-place change since; an
    inference-mode tensor has no version, so `DeployedNetwork` clears the cache around each forward)."""

    SIZE = 8

    def __init__(self) -> None:
        self.entries: list[tuple[weakref.ref[Tensor], int, Tensor]] = []

    def get(self, x: Tensor, compute: Callable[[], Tensor]) -> Tensor:
        version = -1 if x.is_inference() else x._version
        self.entries = [e for e in self.entries if e[0]() is not None]
        for source, seen, out in self.entries:
            if source() is x and seen == version:
                return out
        out = compute()
        self.entries = [*self.entries[-(self.SIZE - 1) :], (weakref.ref(x), version, out)]
        return out

    def clear(self) -> None:
        self.entries = []


_sign_cache = _SignCache()


def clear_sign_cache() -> None:
    _sign_cache.clear()


def sign_bits(x: Tensor, threads: int) -> Tensor:
    """float or int8 +-1 (N, C, H, W) -> the sign bits (N, H, W, words) as int64 storage (bit c set: -1)."""
    n, c, h, w = x.shape

    def compute() -> Tensor:
        src = nhwc(x.detach() if x.dtype == torch.int8 else x.detach().float())
        out = empty((n, h, w, words(c)), BITS_DTYPE)
        pack = _lib().binas_pack_i8 if src.dtype == torch.int8 else _lib().binas_pack_f32
        pack(src.data_ptr(), out.data_ptr(), n * h * w, c, words(c), threads)
        return out

    return _sign_cache.get(x, compute)


def pack_sign_bits_into(part: Tensor, cat: Tensor, offset: int) -> None:
    """OR the sign bits of the float map `part` into the bits map `cat` from channel `offset` on."""
    part = nhwc(part.detach().float())
    n, c, h, w = part.shape
    _lib().binas_pack_f32_at(
        part.data_ptr(), cat.data_ptr(), n * h * w, c, int(cat.shape[-1]), offset, torch.get_num_threads()
    )


def max_pool(x: Tensor, kernel: list[int], stride: list[int], padding: list[int]) -> Tensor:
    """``F.max_pool2d(x, kernel, stride, padding)`` (dilation 1, floor mode) of a float map, channels_last."""
    x = nhwc(x.detach().float())
    n, c, h, w = x.shape
    oh, ow = (_out_size(s, k, st, p, 1) for s, k, st, p in zip((h, w), kernel, stride, padding))
    out = empty((n, c, oh, ow), torch.float32, channels_last=True)
    _lib().binas_max_pool_f32(
        x.data_ptr(), n, h, w, c, *kernel, *stride, *padding, oh, ow, out.data_ptr(), torch.get_num_threads()
    )
    return out


def _out_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class NativeConv:
    """One 1-bit x 1-bit conv on the native kernels: its weights in the kernel's layout, and the call.

    Dense convs (groups 1) take sign bits and use XNOR-popcount; depth-wise convs (groups = channels) take
    int8 signs. Either accepts a float map (signed on the way in) or the form the other kind outputs.
    """

    def __init__(self, signs: Tensor, stride: list[int], padding: list[int], dilation: list[int], groups: int):
        cout, cin_per_group, kh, kw = (int(d) for d in signs.shape)
        if not self.supports(tuple(signs.shape), groups):
            raise ValueError(f"no native kernel for a conv of shape {tuple(signs.shape)} with groups={groups}")
        self.depthwise = groups > 1
        self.cout, self.cin = cout, cin_per_group * groups
        self.geometry = [kh, kw, stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1]]
        taps = signs.detach().cpu().to(torch.int8).permute(2, 3, 0, 1)  # (kh, kw, cout, cin / groups)
        self.table: Tensor | None = None  # byte lookup tables (dense convs of small fan-in)
        if self.depthwise:
            self.weight = taps.reshape(kh * kw, cout).contiguous()
            return
        self.weight = _bits_last(taps.reshape(kh * kw, cout, self.cin))
        if self.cin * kh * kw > 65535:
            return
        if kh * kw * ((self.cin + 7) // 8) * 256 * cout <= MAX_TABLE_BYTES:
            self.table = _byte_tables(self.weight, self.cin)

    @staticmethod
    def supports(shape: tuple[int, ...], groups: int) -> bool:
        cout, cin_per_group, kh, kw = shape
        if max(cout, cin_per_group * groups) > MAX_CHANNELS:
            return False
        return groups == 1 or (groups == cout and cin_per_group == 1 and kh * kw <= MAX_DEPTHWISE_TAPS)

    def __call__(self, x: Tensor, mode: int, scale: Tensor, shift: Tensor, threshold: Tensor) -> Tensor:
        lib, threads = _lib(), torch.get_num_threads()
        kh, kw, sh, sw, ph, pw, dh, dw = self.geometry
        if x.dtype == BITS_DTYPE:  # sign bits (N, H, W, words) from a producer that knew this conv is dense
            n, h, w = x.shape[:3]
            c = self.cin
        else:
            n, c, h, w = x.shape
        if c != self.cin:
            raise ValueError(f"expected {self.cin} input channels, got {c}")
        oh, ow = _out_size(h, kh, sh, ph, dh), _out_size(w, kw, sw, pw, dw)
        if ow * self.cout > MAX_ROW:
            raise ValueError(f"an output row of {ow} x {self.cout} exceeds the native kernels' {MAX_ROW}")
        out = _output(mode, n, self.cout, oh, ow)
        tail = [mode, scale.data_ptr(), shift.data_ptr(), threshold.data_ptr(), out.data_ptr(), threads]
        if self.depthwise:
            if x.dtype == BITS_DTYPE:  # bits (producers send them to dense convs only; correct anyway)
                x = unpack_bits(x, c)
            x = nhwc(x.detach() if x.dtype == torch.int8 else x.detach().float())  # a float map: signed in the kernel
            padded = empty((n * h * (w + 2 * pw) * c + 64,), torch.int8)  # the kernel's zero-padded rows
            head = [x.data_ptr(), int(x.dtype == torch.float32), padded.data_ptr(), n, h, w, c]
            lib.binas_conv_depthwise(*head, self.weight.data_ptr(), *self.geometry, oh, ow, *tail)
        else:
            x = x.contiguous() if x.dtype == BITS_DTYPE else sign_bits(x, threads)
            head = [x.data_ptr(), n, h, w, c, words(c)]
            if self.table is not None:
                lib.binas_conv_dense_lut(*head, self.table.data_ptr(), self.cout, *self.geometry, oh, ow, *tail)
            else:
                lib.binas_conv_dense(*head, self.weight.data_ptr(), self.cout, *self.geometry, oh, ow, *tail)
        return out

    def fuses_nodes(self) -> bool:
        """Whether `node` can compute a DARTS node in this conv's pass: a 1x1 table conv, outputs in 16s."""
        kh, kw, _, _, ph, pw = self.geometry[:6]
        return not self.depthwise and self.table is not None and kh == kw == 1 and ph == pw == 0 and self.cout % 16 == 0

    def node(
        self, x: Tensor, scale: Tensor, shift: Tensor, addend: Tensor | None, target: NodeTarget, in_place: bool
    ) -> Tensor | None:
        """conv(x) * scale + shift (+ `addend`) in one pass, written as `target` says; the float map (None when
        not written). `in_place`: write it into `addend` (a buffer nobody else holds). Raises `NotImplementedError`
        where the kernel has no such pass (no AVX2): the caller then runs the steps one by one."""
        assert self.table is not None
        threads = torch.get_num_threads()
        x = x.contiguous() if x.dtype == BITS_DTYPE else sign_bits(x, threads)
        n, h, w = x.shape[:3]
        _, _, sh, sw = self.geometry[:4]
        oh, ow = _out_size(h, 1, sh, 0, 1), _out_size(w, 1, sw, 0, 1)
        if addend is not None:
            addend = nhwc(addend.detach().float())
            if tuple(addend.shape) != (n, self.cout, oh, ow):
                raise ValueError(
                    f"a node addend of shape {tuple(addend.shape)} for a conv output {(n, self.cout, oh, ow)}"
                )
        out = None
        if target.write_value:
            out = addend if in_place and addend is not None else empty((n, self.cout, oh, ow), torch.float32, True)
        cat = target.cat
        done = _lib().binas_conv_1x1_node(
            x.data_ptr(),
            n,
            h,
            w,
            self.cin,
            words(self.cin),
            self.table.data_ptr(),
            self.cout,
            sh,
            sw,
            oh,
            ow,
            scale.data_ptr(),
            shift.data_ptr(),
            addend.data_ptr() if addend is not None else None,
            out.data_ptr() if out is not None else None,
            cat.data_ptr() if cat is not None else None,
            int(cat.shape[-1]) if cat is not None else 0,
            target.offset,
            threads,
        )
        if not done:
            raise NotImplementedError("no one-pass node kernel on this CPU")
        return out


class NodeTarget:
    """Where a cell node's value goes when its last conv computes it (`NativeConv.node`): the float map
    (`write_value`), and/or its sign bits into the cell's concatenation `cat` (N, H, W, words) from channel
    `offset` on."""

    def __init__(self, write_value: bool, cat: Tensor | None = None, offset: int = 0) -> None:
        self.write_value, self.cat, self.offset = write_value, cat, offset


def _bits_last(signs: Tensor) -> Tensor:
    """int8 +-1 (..., C) -> (..., words) uint64 as int64 storage, bit c set where the sign is -1."""
    c = signs.shape[-1]
    padded = torch.zeros((*signs.shape[:-1], words(c) * 64), dtype=torch.bool)
    padded[..., :c] = signs < 0
    packed = np.packbits(padded.numpy(), axis=-1, bitorder="little")  # bit i of byte j: channel 8 j + i
    return torch.from_numpy(np.ascontiguousarray(packed).view("<u8").astype(np.int64, copy=False))


def _byte_tables(bits: Tensor, cin: int) -> Tensor:
    """(taps, cout, words) weight sign bits -> (taps, bytes, 256, cout) uint8: for each tap, input byte
    position and byte value, the number of -1 products with each output's weights (popcount of the XOR)."""
    taps, cout = bits.shape[:2]
    nbytes = (cin + 7) // 8
    weight_bytes = bits.numpy().view(np.uint8).reshape(taps, cout, -1)[:, :, :nbytes]  # little-endian words
    popcount8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint8)
    values = np.arange(256, dtype=np.uint8).reshape(1, 1, 256, 1)
    table = popcount8[values ^ weight_bytes.transpose(0, 2, 1)[:, :, None, :]]
    return torch.from_numpy(np.ascontiguousarray(table))


def _output(mode: int, n: int, c: int, h: int, w: int) -> Tensor:
    if mode == BITS:
        return empty((n, h, w, words(c)), BITS_DTYPE)
    dtype = {VALUE: torch.float32, SIGN: torch.int8, ACC: torch.int32}[mode]
    return empty((n, c, h, w), dtype, channels_last=True)


def unpack_bits(bits: Tensor, channels: int) -> Tensor:
    """Sign bits (N, H, W, words) -> float +-1 (N, C, H, W), channels_last: for a consumer off the kernels."""
    shifts = torch.arange(64, dtype=BITS_DTYPE)
    set_bits = (bits.unsqueeze(-1) >> shifts).bitwise_and(1).flatten(-2)[..., :channels]
    return (1.0 - 2.0 * set_bits.float()).permute(0, 3, 1, 2)


def main(argv: list[str] | None = None) -> int:
    """``python -m binas.export.kernels [--force]``: build the kernels for this machine now (install time)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    path = build(force="--force" in args)
    if path is None:
        print("binas native kernels: not built (no C compiler found, or the build failed); using other engines")
        return 1
    print(f"binas native kernels: {path}")
    return 0
