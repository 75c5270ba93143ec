"""'VALID' convolutions by oneDNN on the CPU, called from JAX, behind a once-per-process guard.

oneDNN, the library under TensorFlow's CPU convolutions, computes this network's convolutions and, above all, their
weight gradients several times faster than XLA:CPU (``bayesrb benchmark-model`` measures them). This module binds
oneDNN's C API (``libdnnl.so.3`` from the ``onednn-cpu-gomp`` wheel) with :mod:`ctypes` and exposes
:func:`conv_onednn`, a JAX function with a custom gradient whose parts are XLA FFI calls: their handlers are
ctypes callbacks that hand XLA's own buffers to oneDNN, with no copy. The bias and an optional ReLU are fused into
the forward convolution, saving XLA a pass over the activations, and the weight-gradient call also gives the bias
gradient. It runs only on the CPU backend.

The guard
---------
Both bindings are re-declared here by hand, so a library whose ABI differs from those declarations would give wrong
numbers or crash. Before the first use in a process, :func:`unusable_reason` therefore checks

1. that JAX's default backend is the CPU and that ``libdnnl.so.3`` loads;
2. that ``dnnl_version()`` lies in :data:`ONEDNN_VERSIONS` (the oneDNN v3 C API declared below);
3. that the FFI API version of the ``XLA_FFI_Api`` struct XLA passes in the handlers' call frames lies in
   :data:`XLA_FFI_VERSIONS`, and that XLA's ``XLA_FFI_Api`` and ``XLA_FFI_CallFrame`` are as large as declared
   here at least (read from XLA's metadata query where it passes the struct, else by running a probe handler that
   reads nothing else; no oneDNN handler runs before this check, and a handler shown a version outside the range
   leaves XLA's structs untouched);
4. a self-test: the output and the input, kernel and bias gradients of :func:`conv_onednn`, with and without ReLU,
   on a small random case, against the patch-matmul convolution of :mod:`bayesrb.model.network`, each within
   :data:`SELF_TEST_RTOL` of the largest magnitude of the reference.

It returns the first reason that fails, or None. :func:`bayesrb.model.network.resolve_conv_impl` falls back to
``"matmul"`` with one warning for ``conv_impl: auto``, and raises :class:`OneDnnError` for ``conv_impl: onednn``;
:func:`conv_onednn` also refuses to run where the guard fails.

Memory and threads
------------------
Arrays are ``float32`` in JAX's layouts: images ``(N, H, W, C)`` (channels last) and kernels ``(k, k, C, F)``;
oneDNN reads and writes them in place, and the kernel is reordered into oneDNN's preferred blocked layout on each
call (a few kilobytes). One set of primitives is created per shape and cached (up to :data:`MAX_PLANS` shapes,
least recently used destroyed first); the descriptors needed only to create them are destroyed at once. The
engine and stream live for the process. Calls are serialised by a lock: oneDNN already uses every core (OpenMP,
``OMP_NUM_THREADS`` to limit it).

OpenMP wait policy
------------------
By default oneDNN's OpenMP threads (libgomp) keep spinning for a while after each convolution, taking the cores from
XLA's own threads, which run the work between convolutions; with ``OMP_WAIT_POLICY=PASSIVE`` they sleep at once and
leave the cores to XLA (training is faster, most of all on a busy machine). libgomp reads the variable once, when it is
loaded (with ``libdnnl.so.3``, by the guard), so :data:`OMP_WAIT_POLICY` is put in the environment for that load
only and removed afterwards: the process environment, and so child processes, are left as they were. A value the
user set is kept. It has no effect where another library loaded libgomp first.
"""

import collections
import contextlib
import ctypes
import functools
import os
import sys
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

#: oneDNN versions ``(major, minor)`` the ctypes declarations below were written for, ``[lowest, highest)``: the
#: v3 C API (opaque memory descriptors, ``*_primitive_desc_create`` functions), the ABI of ``libdnnl.so.3``.
ONEDNN_VERSIONS = ((3, 0), (4, 0))
#: XLA FFI C API versions ``(major, minor)`` the call-frame structs below were written for, ``[lowest, highest)``:
#: API 0 from minor 1 (the handler metadata query); minor versions only append fields (xla/ffi/api/c_api.h).
XLA_FFI_VERSIONS = ((0, 1), (1, 0))
#: Largest self-test difference allowed, relative to the largest magnitude of the reference array.
SELF_TEST_RTOL = 1e-4
#: Shapes whose primitives are kept at once.
MAX_PLANS = 64
#: OpenMP wait policy of oneDNN's threads, set only while libgomp loads (see the module docstring).
OMP_WAIT_POLICY = "PASSIVE"

_SONAME = "libdnnl.so.3"
_DIMS = ctypes.c_int64 * 12  # dnnl_dims_t (DNNL_MAX_NDIMS = 12)
_HANDLE = ctypes.c_void_p
_F32, _FORMAT_ANY, _CPU, _IN_ORDER, _DIRECT, _FORWARD_TRAINING = 3, 1, 1, 1, 1, 64
_SRC, _DST, _WEIGHTS, _BIAS, _DIFF_SRC, _DIFF_DST, _DIFF_WEIGHTS, _DIFF_BIAS = 1, 17, 33, 41, 129, 145, 161, 169
_ELTWISE_RELU = 0x20
_QUERY_WEIGHTS, _QUERY_DIFF_WEIGHTS = 131, 132


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _HANDLE)]


class _Version(ctypes.Structure):  # dnnl_version_t
    _fields_ = [("major", ctypes.c_int), ("minor", ctypes.c_int), ("patch", ctypes.c_int), ("hash", ctypes.c_char_p),
                ("cpu_runtime", ctypes.c_uint), ("gpu_runtime", ctypes.c_uint)]


_SIGNATURES = {  # functions returning dnnl_status_t
    "dnnl_engine_create": [ctypes.POINTER(_HANDLE), ctypes.c_int, ctypes.c_size_t],
    "dnnl_stream_create": [ctypes.POINTER(_HANDLE), _HANDLE, ctypes.c_uint],
    "dnnl_stream_wait": [_HANDLE],
    "dnnl_memory_desc_create_with_strides": [ctypes.POINTER(_HANDLE), ctypes.c_int, _DIMS, ctypes.c_int, _DIMS],
    "dnnl_memory_desc_create_with_tag": [ctypes.POINTER(_HANDLE), ctypes.c_int, _DIMS, ctypes.c_int, ctypes.c_int],
    "dnnl_memory_desc_clone": [ctypes.POINTER(_HANDLE), _HANDLE],
    "dnnl_convolution_forward_primitive_desc_create": [
        ctypes.POINTER(_HANDLE), _HANDLE, ctypes.c_int, ctypes.c_int, _HANDLE, _HANDLE, _HANDLE, _HANDLE,
        _DIMS, _DIMS, _DIMS, _DIMS, _HANDLE],
    "dnnl_convolution_backward_data_primitive_desc_create": [
        ctypes.POINTER(_HANDLE), _HANDLE, ctypes.c_int, _HANDLE, _HANDLE, _HANDLE, _DIMS, _DIMS, _DIMS, _DIMS,
        _HANDLE, _HANDLE],
    "dnnl_convolution_backward_weights_primitive_desc_create": [
        ctypes.POINTER(_HANDLE), _HANDLE, ctypes.c_int, _HANDLE, _HANDLE, _HANDLE, _HANDLE, _DIMS, _DIMS, _DIMS,
        _DIMS, _HANDLE, _HANDLE],
    "dnnl_reorder_primitive_desc_create": [ctypes.POINTER(_HANDLE), _HANDLE, _HANDLE, _HANDLE, _HANDLE, _HANDLE],
    "dnnl_primitive_create": [ctypes.POINTER(_HANDLE), _HANDLE],
    "dnnl_memory_create": [ctypes.POINTER(_HANDLE), _HANDLE, _HANDLE, _HANDLE],
    "dnnl_primitive_execute": [_HANDLE, _HANDLE, ctypes.c_int, ctypes.POINTER(_ExecArg)],
    "dnnl_primitive_attr_create": [ctypes.POINTER(_HANDLE)],
    "dnnl_post_ops_create": [ctypes.POINTER(_HANDLE)],
    "dnnl_post_ops_append_eltwise": [_HANDLE, ctypes.c_int, ctypes.c_float, ctypes.c_float],
    "dnnl_primitive_attr_set_post_ops": [_HANDLE, _HANDLE],
}
#: The destructor of each kind of handle this module creates.
_DESTROY = {"memory": "dnnl_memory_destroy", "memory_desc": "dnnl_memory_desc_destroy",
            "primitive_desc": "dnnl_primitive_desc_destroy", "primitive": "dnnl_primitive_destroy",
            "attr": "dnnl_primitive_attr_destroy", "post_ops": "dnnl_post_ops_destroy"}
_SIGNATURES.update({name: [_HANDLE] for name in _DESTROY.values()})

#: Serialises every use of oneDNN's primitives and of the primitive cache.
_LOCK = threading.Lock()


class OneDnnError(RuntimeError):
    """oneDNN is missing, unusable here, or refused a call."""


def check_version(what: str, version: tuple[int, ...], versions: tuple[tuple[int, int], tuple[int, int]]) -> None:
    """Raise :class:`OneDnnError` unless ``version[:2]`` lies in ``[versions[0], versions[1])``.

    Parameters
    ----------
    what : str
        The library, for the message.
    version : tuple of int
        ``(major, minor, ...)``.
    versions : tuple of two (int, int)
        The lowest supported ``(major, minor)`` and the first unsupported one.
    """
    (low, high), found = versions, tuple(version[:2])
    if not low <= found < high:
        raise OneDnnError(f"{what} {'.'.join(map(str, version))} is outside the versions this module's ctypes "
                          f"declarations were written for ({low[0]}.{low[1]} <= version < {high[0]}.{high[1]})")


def _library_candidates() -> list[Path]:
    """Where the ``onednn-cpu-gomp`` wheel puts ``libdnnl.so.3``: the ``lib`` folder of this environment."""
    return [Path(prefix) / "lib" / _SONAME for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))]


@contextlib.contextmanager
def _omp_wait_policy():
    """``OMP_WAIT_POLICY`` in the environment for the block only (unless already set), for libgomp to read."""
    if "OMP_WAIT_POLICY" in os.environ:
        yield
        return
    os.environ["OMP_WAIT_POLICY"] = OMP_WAIT_POLICY
    try:
        yield
    finally:
        os.environ.pop("OMP_WAIT_POLICY", None)


class _OneDnn:
    """The loaded library, its version checked, with one CPU engine and stream (kept for the process)."""

    def __init__(self):
        self.lib = self._load()
        self.lib.dnnl_version.argtypes, self.lib.dnnl_version.restype = [], ctypes.POINTER(_Version)
        found = self.lib.dnnl_version().contents
        self.version = (found.major, found.minor, found.patch)
        check_version("oneDNN", self.version, ONEDNN_VERSIONS)  # before any other call
        for name, argtypes in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes, function.restype = argtypes, ctypes.c_int
        self.lib.dnnl_primitive_desc_query_md.argtypes = [_HANDLE, ctypes.c_int, ctypes.c_int]
        self.lib.dnnl_primitive_desc_query_md.restype = _HANDLE
        self.lib.dnnl_memory_desc_get_size.argtypes = [_HANDLE]
        self.lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        self.engine = self.create("dnnl_engine_create", _CPU, 0)
        self.stream = self.create("dnnl_stream_create", self.engine, _IN_ORDER)
        self.seconds = 0.0  # wall time spent in execute(), for seconds_in_onednn()

    @staticmethod
    def _load() -> ctypes.CDLL:
        errors = []
        for name in [*map(str, _library_candidates()), _SONAME]:  # the wheel's, then the loader's search path
            try:
                with _omp_wait_policy():
                    return ctypes.CDLL(name)
            except OSError as error:
                errors.append(str(error))
        raise OneDnnError("oneDNN (libdnnl.so.3) not found; install the 'onednn-cpu-gomp' wheel "
                          "(a dependency of bayesrb on x86-64 Linux). Tried: " + "; ".join(errors))

    def call(self, name: str, *args) -> None:
        """Call the C function ``name``; raise :class:`OneDnnError` unless it returns ``dnnl_success``."""
        status = getattr(self.lib, name)(*args)
        if status != 0:
            raise OneDnnError(f"{name} failed with oneDNN status {status}")

    def create(self, name: str, *args) -> _HANDLE:
        """Call a ``dnnl_*_create`` (or ``_clone``) function and return the handle it creates."""
        handle = _HANDLE()
        self.call(name, ctypes.byref(handle), *args)
        return handle

    def destroy(self, kind: str, handle: _HANDLE) -> None:
        """Destroy ``handle``, a handle of ``kind`` (a key of ``_DESTROY``)."""
        self.call(_DESTROY[kind], handle)

    def memory_desc(self, shape: tuple[int, ...], strides: tuple[int, ...] | None = None) -> _HANDLE:
        """A new float32 memory descriptor: ``strides`` (in elements) of each logical dimension, or any layout."""
        if strides is None:
            return self.create("dnnl_memory_desc_create_with_tag", len(shape), _DIMS(*shape), _F32, _FORMAT_ANY)
        return self.create("dnnl_memory_desc_create_with_strides", len(shape), _DIMS(*shape), _F32, _DIMS(*strides))

    def execute(self, primitive: _HANDLE, arrays: dict[int, tuple[_HANDLE, int]]) -> None:
        """Run ``primitive`` on ``{argument: (memory descriptor, data address)}`` and wait for it."""
        start, memories = time.perf_counter(), {}
        try:
            for arg, (desc, address) in arrays.items():
                memories[arg] = self.create("dnnl_memory_create", desc, self.engine, address)
            args = (_ExecArg * len(memories))(*(_ExecArg(arg, memory) for arg, memory in memories.items()))
            self.call("dnnl_primitive_execute", primitive, self.stream, len(memories), args)
            self.call("dnnl_stream_wait", self.stream)
        finally:
            for memory in memories.values():
                self.destroy("memory", memory)
            self.seconds += time.perf_counter() - start


@functools.cache
def _onednn() -> _OneDnn:
    return _OneDnn()


def seconds_in_onednn() -> float:
    """Wall seconds this process has spent running oneDNN primitives (convolutions and their kernel reorders).

    0 if oneDNN has not been loaded. The difference across a training step tells how much of the step the
    convolutions take (``bayesrb benchmark-model`` prints it).
    """
    return _onednn().seconds if _onednn.cache_info().currsize else 0.0


class _ConvPlan:
    """oneDNN primitives for one 'VALID', stride-1 convolution of ``(N, H, W, C)`` by ``(k, k, C, F)`` plus bias.

    With ``relu``, the forward convolution applies a ReLU to its output (the gradients are those of the
    convolution alone: the caller masks the output gradient). The plan owns its primitives, the memory descriptors
    they use and the forward primitive descriptor; :meth:`destroy` frees them. The other descriptors are freed once
    the primitives are made. Its methods must be called with ``_LOCK`` held.
    """

    def __init__(self, x_shape: tuple[int, int, int, int], kernel_shape: tuple[int, int, int, int], relu: bool):
        self.dnn = _onednn()
        self._owned: list[tuple[str, _HANDLE]] = []
        try:
            with contextlib.ExitStack() as temporaries:
                self._build(x_shape, kernel_shape, relu, temporaries)
        except BaseException:
            self.destroy()
            raise

    def _keep(self, kind: str, handle: _HANDLE) -> _HANDLE:
        """``handle``, owned by the plan until :meth:`destroy`."""
        self._owned.append((kind, handle))
        return handle

    def _temporary(self, temporaries: contextlib.ExitStack, kind: str, handle: _HANDLE) -> _HANDLE:
        """``handle``, destroyed when the plan's construction ends."""
        temporaries.callback(self.dnn.destroy, kind, handle)
        return handle

    def destroy(self) -> None:
        """Free every oneDNN object the plan owns (newest first); the plan is unusable afterwards."""
        while self._owned:
            self.dnn.destroy(*self._owned.pop())

    def _build(self, x_shape, kernel_shape, relu: bool, temporaries: contextlib.ExitStack) -> None:
        dnn = self.dnn
        n, h, w, c = x_shape
        k, _, _, f = kernel_shape
        # Logical dimensions are oneDNN's (N, C, H, W) and (F, C, k, k); strides give JAX's layouts.
        rows, cols = h - k + 1, w - k + 1
        self.x_desc = self._keep("memory_desc", dnn.memory_desc((n, c, h, w), (h * w * c, 1, w * c, c)))
        self.y_desc = self._keep("memory_desc", dnn.memory_desc((n, f, rows, cols), (rows * cols * f, 1, cols * f, f)))
        self.kernel_desc = self._keep("memory_desc", dnn.memory_desc((f, c, k, k), (1, f, k * c * f, c * f)))
        self.bias_desc = self._keep("memory_desc", dnn.memory_desc((f,), (1,)))
        geometry = (_DIMS(1, 1), _DIMS(0, 0), _DIMS(0, 0), _DIMS(0, 0))  # strides, dilations, padding l / r
        # each primitive picks its own kernel layout
        any_kernel = self._temporary(temporaries, "memory_desc", dnn.memory_desc((f, c, k, k)))
        attr = self._relu_attr(temporaries) if relu else None
        # Kept with the plan, and destroyed after the primitives (the owned handles go newest first): the backward
        # descriptors, copied into their primitives, keep a raw pointer to it, their "hint".
        forward = self._keep("primitive_desc", dnn.create(
            "dnnl_convolution_forward_primitive_desc_create", dnn.engine, _FORWARD_TRAINING, _DIRECT, self.x_desc,
            any_kernel, self.bias_desc, self.y_desc, *geometry, attr))
        input_grad = self._temporary(temporaries, "primitive_desc", dnn.create(
            "dnnl_convolution_backward_data_primitive_desc_create", dnn.engine, _DIRECT, self.x_desc, any_kernel,
            self.y_desc, *geometry, forward, None))
        kernel_grad = self._temporary(temporaries, "primitive_desc", dnn.create(
            "dnnl_convolution_backward_weights_primitive_desc_create", dnn.engine, _DIRECT, self.x_desc, any_kernel,
            self.bias_desc, self.y_desc, *geometry, forward, None))
        self.forward, self.forward_kernel = self._with_kernel_layout(forward, _QUERY_WEIGHTS)
        self.input_grad, self.input_grad_kernel = self._with_kernel_layout(input_grad, _QUERY_WEIGHTS)
        self.kernel_grad, self.kernel_grad_kernel = self._with_kernel_layout(kernel_grad, _QUERY_DIFF_WEIGHTS)
        self.to_forward_kernel = self._reorder(self.kernel_desc, self.forward_kernel)
        self.to_input_grad_kernel = self._reorder(self.kernel_desc, self.input_grad_kernel)
        self.from_kernel_grad_kernel = self._reorder(self.kernel_grad_kernel, self.kernel_desc)

    def _relu_attr(self, temporaries: contextlib.ExitStack) -> _HANDLE:
        """Primitive attributes with one post-op, ReLU (both freed once the primitive descriptors are made)."""
        post_ops = self._temporary(temporaries, "post_ops", self.dnn.create("dnnl_post_ops_create"))
        self.dnn.call("dnnl_post_ops_append_eltwise", post_ops, _ELTWISE_RELU, 0.0, 0.0)
        attr = self._temporary(temporaries, "attr", self.dnn.create("dnnl_primitive_attr_create"))
        self.dnn.call("dnnl_primitive_attr_set_post_ops", attr, post_ops)  # the attributes copy the post-ops
        return attr

    def _with_kernel_layout(self, primitive_desc: _HANDLE, query: int) -> tuple[_HANDLE, _HANDLE]:
        """The primitive of ``primitive_desc`` and a copy of the kernel layout it chose (both owned)."""
        primitive = self._keep("primitive", self.dnn.create("dnnl_primitive_create", primitive_desc))
        layout = self.dnn.lib.dnnl_primitive_desc_query_md(primitive_desc, query, 0)  # owned by primitive_desc
        if not layout:
            raise OneDnnError(f"oneDNN gave no kernel layout for query {query}")
        return primitive, self._keep("memory_desc", self.dnn.create("dnnl_memory_desc_clone", layout))

    def _reorder(self, source: _HANDLE, target: _HANDLE) -> _HANDLE:
        """A primitive copying memory of layout ``source`` into layout ``target`` (owned)."""
        dnn = self.dnn
        desc = dnn.create("dnnl_reorder_primitive_desc_create", source, dnn.engine, target, dnn.engine, None)
        try:
            return self._keep("primitive", dnn.create("dnnl_primitive_create", desc))
        finally:
            dnn.destroy("primitive_desc", desc)

    def _buffer(self, layout: _HANDLE) -> np.ndarray:
        """An uninitialised float32 buffer for memory of ``layout``."""
        return np.empty(self.dnn.lib.dnnl_memory_desc_get_size(layout) // 4, np.float32)

    def _reordered_kernel(self, kernel: int, reorder: _HANDLE, layout: _HANDLE) -> np.ndarray:
        """The kernel at address ``kernel`` in a primitive's ``layout``, by its ``reorder``."""
        blocked = self._buffer(layout)
        self.dnn.execute(reorder, {_SRC: (self.kernel_desc, kernel), _DST: (layout, blocked.ctypes.data)})
        return blocked

    def run_forward(self, x: int, kernel: int, bias: int, y: int) -> None:
        """``y = conv(x, kernel) + bias`` (then ReLU); arguments are addresses of C-ordered float32 arrays."""
        blocked = self._reordered_kernel(kernel, self.to_forward_kernel, self.forward_kernel)
        self.dnn.execute(self.forward, {_SRC: (self.x_desc, x), _DST: (self.y_desc, y),
                                        _WEIGHTS: (self.forward_kernel, blocked.ctypes.data),
                                        _BIAS: (self.bias_desc, bias)})

    def run_input_grad(self, y_grad: int, kernel: int, x_grad: int) -> None:
        """``x_grad``: the gradient with respect to ``x`` of ``sum(y_grad * conv(x, kernel))``."""
        blocked = self._reordered_kernel(kernel, self.to_input_grad_kernel, self.input_grad_kernel)
        self.dnn.execute(self.input_grad, {_DIFF_DST: (self.y_desc, y_grad), _DIFF_SRC: (self.x_desc, x_grad),
                                           _WEIGHTS: (self.input_grad_kernel, blocked.ctypes.data)})

    def run_kernel_grad(self, x: int, y_grad: int, kernel_grad: int, bias_grad: int) -> None:
        """The gradients with respect to the kernel and the bias of ``sum(y_grad * (conv(x, kernel) + bias))``."""
        blocked = self._buffer(self.kernel_grad_kernel)
        self.dnn.execute(self.kernel_grad, {_SRC: (self.x_desc, x), _DIFF_DST: (self.y_desc, y_grad),
                                            _DIFF_WEIGHTS: (self.kernel_grad_kernel, blocked.ctypes.data),
                                            _DIFF_BIAS: (self.bias_desc, bias_grad)})
        self.dnn.execute(self.from_kernel_grad_kernel, {_SRC: (self.kernel_grad_kernel, blocked.ctypes.data),
                                                        _DST: (self.kernel_desc, kernel_grad)})


_PLANS: collections.OrderedDict[tuple, _ConvPlan] = collections.OrderedDict()


def _plan(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], relu: bool = False) -> _ConvPlan:
    """The cached plan of these shapes (made on first use); the least recently used beyond MAX_PLANS is destroyed.

    Call with ``_LOCK`` held.
    """
    key = (x_shape, kernel_shape, relu)
    if key in _PLANS:
        _PLANS.move_to_end(key)
        return _PLANS[key]
    plan = _PLANS[key] = _ConvPlan(x_shape, kernel_shape, relu)
    while len(_PLANS) > MAX_PLANS:
        _PLANS.popitem(last=False)[1].destroy()
    return plan


# XLA's FFI (xla/ffi/api/c_api.h, API 0.x): the call frame a handler receives, read through ctypes so that the
# handler is a Python function working on XLA's own buffers, with no copy.
class _ExtensionBase(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("type", ctypes.c_int), ("next", _HANDLE)]


class _ApiVersion(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("major", ctypes.c_int),
                ("minor", ctypes.c_int)]


class _ErrorCreateArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("message", ctypes.c_char_p),
                ("errc", ctypes.c_int)]


_ERROR_CREATE = ctypes.CFUNCTYPE(_HANDLE, ctypes.POINTER(_ErrorCreateArgs))


class _Api(ctypes.Structure):  # XLA_FFI_Api, up to the one function used
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("api_version", _ApiVersion),
                ("internal_api", _HANDLE), ("error_create", _ERROR_CREATE)]


class _Metadata(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("api_version", _ApiVersion), ("traits", ctypes.c_uint32),
                ("state_type_id", ctypes.c_int64)]


class _MetadataExtension(ctypes.Structure):
    _fields_ = [("extension_base", _ExtensionBase), ("metadata", ctypes.POINTER(_Metadata))]


class _Buffers(ctypes.Structure):  # XLA_FFI_Args and XLA_FFI_Rets
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("size", ctypes.c_int64),
                ("types", _HANDLE), ("buffers", ctypes.POINTER(_HANDLE))]


class _Buffer(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("dtype", ctypes.c_int),
                ("data", _HANDLE), ("rank", ctypes.c_int64), ("dims", ctypes.POINTER(ctypes.c_int64))]


class _CallFrame(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", ctypes.POINTER(_ExtensionBase)),
                ("api", ctypes.POINTER(_Api)), ("ctx", _HANDLE), ("stage", ctypes.c_int), ("args", _Buffers),
                ("rets", _Buffers), ("attrs", _Buffers), ("future", _HANDLE)]


_FFI_API_VERSION = (0, 1)  # the version the handlers declare to XLA
_FFI_METADATA_EXTENSION, _FFI_ERROR_INTERNAL = 1, 13
_HANDLER = ctypes.CFUNCTYPE(_HANDLE, ctypes.POINTER(_CallFrame))
#: What the first call frame with an XLA_FFI_Api showed of it: "version" (major, minor), "api_size", "frame_size".
_XLA_FFI_SEEN: dict[str, object] = {}
_PROBE_TARGET = "bayesrb_onednn_ffi_probe"


def _buffers(buffers: _Buffers) -> list[tuple[int, tuple[int, ...]]]:
    """``(data pointer, shape)`` of each buffer of an FFI argument or result list."""
    out = []
    for i in range(buffers.size):
        buffer = ctypes.cast(buffers.buffers[i], ctypes.POINTER(_Buffer)).contents
        out.append((buffer.data, tuple(buffer.dims[d] for d in range(buffer.rank))))
    return out


def _ffi_error(frame: _CallFrame, message: str) -> int:
    """An XLA_FFI_Error carrying ``message``, made by the API of ``frame``."""
    args = _ErrorCreateArgs(ctypes.sizeof(_ErrorCreateArgs), None, message.encode(), _FFI_ERROR_INTERNAL)
    return frame.api.contents.error_create(ctypes.byref(args))


def _record_api(frame: _CallFrame) -> tuple[int, int] | None:
    """Record the version of the XLA_FFI_Api of ``frame`` and the sizes of both; None if the frame has no API."""
    if not frame.api:
        return None
    api = frame.api.contents  # struct_size, extension_start and api_version lead every version of XLA_FFI_Api
    version = (api.api_version.major, api.api_version.minor)
    _XLA_FFI_SEEN.setdefault("version", version)
    _XLA_FFI_SEEN.setdefault("api_size", api.struct_size)
    _XLA_FFI_SEEN.setdefault("frame_size", frame.struct_size)
    return version


def _answer_metadata(frame: _CallFrame) -> None:
    """Declare the handler's API version (no traits), unless the frame shows an XLA FFI API outside the range.

    Outside the range XLA's structs are left alone: XLA refuses the handler and the guard reports why. The
    metadata queries of FFI API 0.1 come with no API (and so no version) at all.
    """
    version = _record_api(frame)
    low, high = XLA_FFI_VERSIONS
    if version is None or low <= version < high:
        metadata = ctypes.cast(frame.extension_start, ctypes.POINTER(_MetadataExtension)).contents.metadata.contents
        metadata.api_version.major, metadata.api_version.minor = _FFI_API_VERSION
        metadata.traits = 0


def _ffi_handler(run):
    """An XLA FFI handler (a C function pointer) calling ``run(args, rets)`` on ``(pointer, shape)`` lists.

    It answers XLA's metadata query (see :func:`_answer_metadata`) and turns exceptions into XLA errors.
    """
    def handler(frame_pointer):
        frame = frame_pointer.contents
        if frame.extension_start and frame.extension_start.contents.type == _FFI_METADATA_EXTENSION:
            _answer_metadata(frame)
            return None
        try:
            run(_buffers(frame.args), _buffers(frame.rets))
        except Exception as error:  # noqa: BLE001 -- reported to XLA, which raises it in the caller
            return _ffi_error(frame, f"oneDNN convolution failed: {error!r}")
        return None
    return _HANDLER(handler)


@_HANDLER
def _probe_handler(frame_pointer):
    """An FFI handler that only records the XLA_FFI_Api it is given (and answers the metadata query)."""
    frame = frame_pointer.contents
    if frame.extension_start and frame.extension_start.contents.type == _FFI_METADATA_EXTENSION:
        _answer_metadata(frame)
    else:
        _record_api(frame)
    return None


def _forward_runner(relu: bool):
    def run(args, rets):
        (x, x_shape), (kernel, kernel_shape), (bias, _) = args
        with _LOCK:
            _plan(x_shape, kernel_shape, relu).run_forward(x, kernel, bias, rets[0][0])
    return run


def _run_input_grad(args, rets):
    (y_grad, _), (kernel, kernel_shape) = args
    (x_grad, x_shape), = rets
    with _LOCK:
        _plan(x_shape, kernel_shape).run_input_grad(y_grad, kernel, x_grad)


def _run_kernel_grad(args, rets):
    (x, x_shape), (y_grad, _) = args
    (kernel_grad, kernel_shape), (bias_grad, _) = rets
    with _LOCK:
        _plan(x_shape, kernel_shape).run_kernel_grad(x, y_grad, kernel_grad, bias_grad)


_TARGETS = {"bayesrb_onednn_conv_forward": _forward_runner(relu=False),
            "bayesrb_onednn_conv_relu_forward": _forward_runner(relu=True),
            "bayesrb_onednn_conv_input_grad": _run_input_grad,
            "bayesrb_onednn_conv_kernel_grad": _run_kernel_grad}


@functools.cache
def _register_targets() -> dict[str, object]:
    """Register the FFI targets with XLA (once); returns the handlers, which must stay alive."""
    new_capsule = ctypes.pythonapi.PyCapsule_New
    new_capsule.restype, new_capsule.argtypes = ctypes.py_object, [_HANDLE, ctypes.c_char_p, _HANDLE]
    handlers = {name: _ffi_handler(run) for name, run in _TARGETS.items()} | {_PROBE_TARGET: _probe_handler}
    for name, handler in handlers.items():
        jax.ffi.register_ffi_target(name, new_capsule(ctypes.cast(handler, _HANDLE), None, None), platform="cpu")
    return handlers


def _ffi(target: str, out_shapes, *arrays: jax.Array):
    """Call FFI ``target`` on ``arrays``, giving float32 arrays of ``out_shapes`` (a shape or a list of shapes)."""
    if isinstance(out_shapes, list):
        results = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in out_shapes]
    else:
        results = jax.ShapeDtypeStruct(out_shapes, jnp.float32)
    return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*arrays)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _conv(x: jax.Array, kernel: jax.Array, bias: jax.Array, relu: bool) -> jax.Array:
    """:func:`conv_onednn` without the guard (used by the guard's self-test)."""
    k, _, _, f = kernel.shape
    n, h, w, _ = x.shape
    target = "bayesrb_onednn_conv_relu_forward" if relu else "bayesrb_onednn_conv_forward"
    return _ffi(target, (n, h - k + 1, w - k + 1, f), x, kernel, bias)


def _forward(x, kernel, bias, relu):
    y = _conv(x, kernel, bias, relu)
    return y, (x, kernel, y if relu else None)


def _backward(relu, residuals, y_grad):
    x, kernel, y = residuals
    if relu:
        y_grad = jnp.where(y > 0, y_grad, 0.0)
    kernel_grad, bias_grad = _ffi("bayesrb_onednn_conv_kernel_grad", [kernel.shape, kernel.shape[-1:]], x, y_grad)
    return _ffi("bayesrb_onednn_conv_input_grad", x.shape, y_grad, kernel), kernel_grad, bias_grad


_conv.defvjp(_forward, _backward)


def conv_onednn(x: jax.Array, kernel: jax.Array, bias: jax.Array, relu: bool = False) -> jax.Array:
    """'VALID' convolution plus bias, then a ReLU if ``relu``, by oneDNN (on the CPU only).

    Equal to ``conv_xla(x, kernel) + bias`` (and its ReLU) up to float rounding, in value and gradient.

    Parameters
    ----------
    x : jax.Array
        Images ``(N, H, W, C)``, float32.
    kernel : jax.Array
        ``(k, k, C, F)``, float32.
    bias : jax.Array
        ``(F,)``, float32.
    relu : bool
        Apply a ReLU to the output (not differentiable; a static argument).

    Returns
    -------
    jax.Array
        ``(N, H - k + 1, W - k + 1, F)``.

    Raises
    ------
    TypeError
        If an array is not float32.
    OneDnnError
        If the guard fails here (:func:`unusable_reason`); checked when the call is traced.
    """
    if any(array.dtype != jnp.float32 for array in (x, kernel, bias)):
        raise TypeError(f"conv_onednn takes float32 arrays, got {[str(a.dtype) for a in (x, kernel, bias)]}")
    require()
    return _conv(x, kernel, bias, relu)


def _run_now(function, *args: np.ndarray):
    """``function(*args)`` compiled ahead of time and run now, as NumPy arrays, even inside a trace.

    The guard is often first reached while a network is traced; a compiled executable is not staged into that trace.
    """
    return jax.tree.map(np.asarray, jax.jit(function).lower(*args).compile()(*args))


def _self_test_case() -> tuple[np.ndarray, ...]:
    """A small random case: images, kernel, bias and an output gradient."""
    rng = np.random.default_rng(20250101)
    shapes = ((3, 9, 8, 5), (3, 3, 5, 6), (6,), (3, 7, 6, 6))
    return tuple(rng.standard_normal(shape, dtype=np.float32) for shape in shapes)


def _conv_matmul_reference(x, kernel, bias, relu: bool):
    from bayesrb.model.network import conv_matmul  # imported here: network imports this module

    y = conv_matmul(x, kernel) + bias
    return jax.nn.relu(y) if relu else y


def _values_and_gradients(conv, x, kernel, bias, y_grad) -> list[jax.Array]:
    """Output, then input, kernel and bias gradients by ``conv(x, kernel, bias, relu)``, without then with ReLU."""
    out = []
    for relu in (False, True):
        y, vjp = jax.vjp(lambda *a, relu=relu: conv(*a, relu), x, kernel, bias)
        out += [y, *vjp(y_grad)]
    return out


_SELF_TEST_NAMES = [f"{part}{' (ReLU)' * relu}" for relu in (False, True)
                    for part in ("output", "input gradient", "kernel gradient", "bias gradient")]


def _self_test() -> str | None:
    """Compare :func:`conv_onednn` with the patch-matmul convolution; the first difference, or None."""
    case = _self_test_case()
    ours = _run_now(functools.partial(_values_and_gradients, _conv), *case)
    reference = _run_now(functools.partial(_values_and_gradients, _conv_matmul_reference), *case)
    for name, a, r in zip(_SELF_TEST_NAMES, ours, reference, strict=True):
        error = float(np.max(np.abs(a - r))) / float(np.max(np.abs(r)))
        if not error <= SELF_TEST_RTOL:  # also catches NaN
            return (f"self-test: the {name} of oneDNN's convolution differs from the patch-matmul one by {error:.2g}"
                    f" of its largest magnitude (tolerance {SELF_TEST_RTOL:g})")
    return None


def _probe_xla_ffi() -> None:
    """Run the probe target once (unless a call frame has already shown XLA's FFI API) to see the API."""
    if "version" not in _XLA_FFI_SEEN:
        _run_now(jax.ffi.ffi_call(_PROBE_TARGET, jax.ShapeDtypeStruct((1,), jnp.float32)))


def _xla_ffi_reason() -> str | None:
    """Why XLA's FFI, as the handlers' call frames showed it, does not fit the declarations here; or None."""
    if "version" not in _XLA_FFI_SEEN:
        return "XLA gave the FFI handlers no XLA_FFI_Api, so its FFI API version is unknown"
    try:
        check_version("XLA FFI API", _XLA_FFI_SEEN["version"], XLA_FFI_VERSIONS)
    except OneDnnError as error:
        return str(error)
    sizes = {"XLA_FFI_Api": ("api_size", _Api), "XLA_FFI_CallFrame": ("frame_size", _CallFrame)}
    for struct, (key, declared) in sizes.items():
        if _XLA_FFI_SEEN[key] < ctypes.sizeof(declared):
            return f"XLA's {struct} has {_XLA_FFI_SEEN[key]} bytes, fewer than the {ctypes.sizeof(declared)} declared"
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


@functools.cache
def _guard() -> str | None:
    if jax.default_backend() != "cpu":
        return f"JAX's default backend is {jax.default_backend()!r}, and oneDNN's convolutions run on the CPU only"
    try:
        _onednn()  # loads the library and checks its version
        _register_targets()  # XLA queries the handlers' metadata now or when a call to them is compiled
        _probe_xla_ffi()
        return _xla_ffi_reason() or _self_test()  # no oneDNN handler runs before XLA's FFI API is checked
    except Exception as error:  # noqa: BLE001 -- any failure means: do not use oneDNN here
        if "version" in _XLA_FFI_SEEN and _xla_ffi_reason():  # XLA refused handlers that left its structs alone
            return _xla_ffi_reason()
        return f"{type(error).__name__}: {error}"


_GUARD_LOCK = threading.Lock()


def unusable_reason() -> str | None:
    """Why oneDNN's convolutions cannot be used in this process, or None where they can.

    The guard of the module docstring; it runs once per process (its cost: compiling and running a small
    case) and its answer is kept.

    Returns
    -------
    str or None
        One line naming the first check that failed: the JAX backend, a missing library, a version outside
        :data:`ONEDNN_VERSIONS` or :data:`XLA_FFI_VERSIONS`, a self-test difference, or an error.
    """
    with _GUARD_LOCK:
        reason = _guard()
    return None if reason is None else _one_line(reason)


def available() -> bool:
    """Whether oneDNN's convolutions can be used here (the guard, :func:`unusable_reason`, passes)."""
    return unusable_reason() is None


def require() -> None:
    """Raise :class:`OneDnnError` naming why, unless oneDNN's convolutions can be used here."""
    reason = unusable_reason()
    if reason is not None:
        raise OneDnnError(f"oneDNN's convolutions cannot be used here: {reason} (use conv_impl 'auto' or 'matmul')")
