"""'VALID' convolutions by oneDNN on the CPU, called from JAX.

XLA:CPU computes the convolutions of this network, and their gradients most of all, at 20-110 GFLOP/s on this
project's 2-core machine; oneDNN, the library under TensorFlow's CPU convolutions, computes the same forward
pass, weight gradient and input gradient at ~200 GFLOP/s (the machine's float32 matrix-product peak). This module
binds oneDNN's C API (``libdnnl.so.3`` from the ``onednn-cpu-gomp`` wheel) with :mod:`ctypes` and exposes
:func:`conv_onednn`, a JAX function with a custom gradient whose parts are XLA FFI calls: their handlers are
ctypes callbacks that hand XLA's own buffers to oneDNN, with no copy. The bias and an optional ReLU are fused into
the forward convolution, saving XLA a pass over the activations, and the weight-gradient call also gives the bias
gradient. It runs only on the CPU backend; :func:`available` says whether the library loads.

Arrays are ``float32`` in JAX's layouts: images ``(N, H, W, C)`` (channels last) and kernels ``(k, k, C, F)``;
oneDNN reads and writes them in place, and the kernel is reordered into oneDNN's preferred blocked layout on each
call (a few kilobytes). One primitive set is created per shape and cached. Calls are serialised by a lock: oneDNN
already uses every core (OpenMP, ``OMP_NUM_THREADS`` to limit it).
"""

import ctypes
import functools
import os
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

_SONAME = "libdnnl.so.3"
_DIMS = ctypes.c_int64 * 12  # dnnl_dims_t (DNNL_MAX_NDIMS = 12)
_HANDLE = ctypes.c_void_p
_F32, _FORMAT_ANY, _CPU, _IN_ORDER, _DIRECT, _FORWARD_TRAINING = 3, 1, 1, 1, 1, 64
_SRC, _DST, _WEIGHTS, _BIAS, _DIFF_SRC, _DIFF_DST, _DIFF_WEIGHTS, _DIFF_BIAS = 1, 17, 33, 41, 129, 145, 161, 169
_ELTWISE_RELU = 0x20
_QUERY_WEIGHTS, _QUERY_DIFF_WEIGHTS = 131, 132


class _ExecArg(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_int), ("memory", _HANDLE)]


_SIGNATURES = {
    "dnnl_engine_create": [ctypes.POINTER(_HANDLE), ctypes.c_int, ctypes.c_size_t],
    "dnnl_stream_create": [ctypes.POINTER(_HANDLE), _HANDLE, ctypes.c_uint],
    "dnnl_stream_wait": [_HANDLE],
    "dnnl_memory_desc_create_with_strides": [ctypes.POINTER(_HANDLE), ctypes.c_int, _DIMS, ctypes.c_int, _DIMS],
    "dnnl_memory_desc_create_with_tag": [ctypes.POINTER(_HANDLE), ctypes.c_int, _DIMS, ctypes.c_int, ctypes.c_int],
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
    "dnnl_memory_destroy": [_HANDLE],
    "dnnl_primitive_execute": [_HANDLE, _HANDLE, ctypes.c_int, ctypes.POINTER(_ExecArg)],
    "dnnl_primitive_attr_create": [ctypes.POINTER(_HANDLE)],
    "dnnl_post_ops_create": [ctypes.POINTER(_HANDLE)],
    "dnnl_post_ops_append_eltwise": [_HANDLE, ctypes.c_int, ctypes.c_float, ctypes.c_float],
    "dnnl_primitive_attr_set_post_ops": [_HANDLE, _HANDLE],
}


class OneDnnError(RuntimeError):
    """oneDNN is missing or refused a call."""


def _library_candidates() -> list[Path]:
    """Where the ``onednn-cpu-gomp`` wheel puts ``libdnnl.so.3``: the ``lib`` folder of this environment."""
    return [Path(prefix) / "lib" / _SONAME for prefix in dict.fromkeys((sys.prefix, sys.base_prefix))]


class _OneDnn:
    """The loaded library with one CPU engine and stream."""

    def __init__(self):
        self.lib = self._load()
        for name, argtypes in _SIGNATURES.items():
            function = getattr(self.lib, name)
            function.argtypes, function.restype = argtypes, ctypes.c_int
        self.lib.dnnl_primitive_desc_query_md.argtypes = [_HANDLE, ctypes.c_int, ctypes.c_int]
        self.lib.dnnl_primitive_desc_query_md.restype = _HANDLE
        self.lib.dnnl_memory_desc_get_size.argtypes = [_HANDLE]
        self.lib.dnnl_memory_desc_get_size.restype = ctypes.c_size_t
        self.engine, self.stream = _HANDLE(), _HANDLE()
        self.call("dnnl_engine_create", ctypes.byref(self.engine), _CPU, 0)
        self.call("dnnl_stream_create", ctypes.byref(self.stream), self.engine, _IN_ORDER)
        self.lock = threading.Lock()

    @staticmethod
    def _load() -> ctypes.CDLL:
        # OpenMP threads that spin after a convolution steal the cores from XLA's own work between convolutions.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        errors = []
        for name in [*map(str, _library_candidates()), _SONAME]:  # the wheel's, then the loader's search path
            try:
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
        """Call a ``dnnl_*_create`` function and return the handle it creates."""
        handle = _HANDLE()
        self.call(name, ctypes.byref(handle), *args)
        return handle

    def memory_desc(self, shape: tuple[int, ...], strides: tuple[int, ...] | None = None) -> _HANDLE:
        """A float32 memory descriptor: ``strides`` (in elements) of each logical dimension, or any layout."""
        if strides is None:
            return self.create("dnnl_memory_desc_create_with_tag", len(shape), _DIMS(*shape), _F32, _FORMAT_ANY)
        return self.create("dnnl_memory_desc_create_with_strides", len(shape), _DIMS(*shape), _F32, _DIMS(*strides))

    def execute(self, primitive: _HANDLE, arrays: dict[int, tuple[_HANDLE, int]]) -> None:
        """Run ``primitive`` on ``{argument: (memory descriptor, data address)}`` and wait for it."""
        memories = {arg: self.create("dnnl_memory_create", desc, self.engine, address)
                    for arg, (desc, address) in arrays.items()}
        try:
            args = (_ExecArg * len(memories))(*(_ExecArg(arg, memory) for arg, memory in memories.items()))
            self.call("dnnl_primitive_execute", primitive, self.stream, len(memories), args)
            self.call("dnnl_stream_wait", self.stream)
        finally:
            for memory in memories.values():
                self.lib.dnnl_memory_destroy(memory)


@functools.cache
def _onednn() -> _OneDnn:
    return _OneDnn()


def available() -> bool:
    """Whether oneDNN loads here (the ``onednn-cpu-gomp`` wheel is installed)."""
    try:
        _onednn()
    except OneDnnError:
        return False
    return True


class _ConvPlan:
    """oneDNN primitives for one 'VALID', stride-1 convolution of ``(N, H, W, C)`` by ``(k, k, C, F)`` plus bias.

    With ``relu``, the forward convolution applies a ReLU to its output (the gradients are those of the
    convolution alone: the caller masks the output gradient).
    """

    def __init__(self, x_shape: tuple[int, int, int, int], kernel_shape: tuple[int, int, int, int], relu: bool):
        dnn = self.dnn = _onednn()
        n, h, w, c = x_shape
        k, _, _, f = kernel_shape
        # Logical dimensions are oneDNN's (N, C, H, W) and (F, C, k, k); strides give JAX's layouts.
        rows, cols = h - k + 1, w - k + 1
        self.x_desc = dnn.memory_desc((n, c, h, w), (h * w * c, 1, w * c, c))
        self.y_desc = dnn.memory_desc((n, f, rows, cols), (rows * cols * f, 1, cols * f, f))
        self.kernel_desc = dnn.memory_desc((f, c, k, k), (1, f, k * c * f, c * f))
        self.bias_desc = dnn.memory_desc((f,), (1,))
        geometry = (_DIMS(1, 1), _DIMS(0, 0), _DIMS(0, 0), _DIMS(0, 0))  # strides, dilations, padding l / r
        any_kernel = dnn.memory_desc((f, c, k, k))  # each primitive picks its own kernel layout
        forward = dnn.create("dnnl_convolution_forward_primitive_desc_create", dnn.engine, _FORWARD_TRAINING,
                             _DIRECT, self.x_desc, any_kernel, self.bias_desc, self.y_desc, *geometry,
                             self._relu_attr() if relu else None)
        input_grad = dnn.create("dnnl_convolution_backward_data_primitive_desc_create", dnn.engine, _DIRECT,
                                self.x_desc, any_kernel, self.y_desc, *geometry, forward, None)
        kernel_grad = dnn.create("dnnl_convolution_backward_weights_primitive_desc_create", dnn.engine, _DIRECT,
                                 self.x_desc, any_kernel, self.bias_desc, self.y_desc, *geometry, forward, None)
        self.forward, self.forward_kernel = self._with_kernel_layout(forward, _QUERY_WEIGHTS)
        self.input_grad, self.input_grad_kernel = self._with_kernel_layout(input_grad, _QUERY_WEIGHTS)
        self.kernel_grad, self.kernel_grad_kernel = self._with_kernel_layout(kernel_grad, _QUERY_DIFF_WEIGHTS)
        self.to_forward_kernel = self._reorder(self.kernel_desc, self.forward_kernel)
        self.to_input_grad_kernel = self._reorder(self.kernel_desc, self.input_grad_kernel)
        self.from_kernel_grad_kernel = self._reorder(self.kernel_grad_kernel, self.kernel_desc)

    def _relu_attr(self) -> _HANDLE:
        """Primitive attributes with one post-op: ReLU."""
        post_ops = self.dnn.create("dnnl_post_ops_create")
        self.dnn.call("dnnl_post_ops_append_eltwise", post_ops, _ELTWISE_RELU, 0.0, 0.0)
        attr = self.dnn.create("dnnl_primitive_attr_create")
        self.dnn.call("dnnl_primitive_attr_set_post_ops", attr, post_ops)
        return attr

    def _with_kernel_layout(self, primitive_desc: _HANDLE, query: int) -> tuple[_HANDLE, _HANDLE]:
        """The primitive of ``primitive_desc`` and the kernel layout it chose."""
        return (self.dnn.create("dnnl_primitive_create", primitive_desc),
                self.dnn.lib.dnnl_primitive_desc_query_md(primitive_desc, query, 0))

    def _reorder(self, source: _HANDLE, target: _HANDLE) -> _HANDLE:
        dnn = self.dnn
        desc = dnn.create("dnnl_reorder_primitive_desc_create", source, dnn.engine, target, dnn.engine, None)
        return dnn.create("dnnl_primitive_create", desc)

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
        with self.dnn.lock:
            blocked = self._reordered_kernel(kernel, self.to_forward_kernel, self.forward_kernel)
            self.dnn.execute(self.forward, {_SRC: (self.x_desc, x), _DST: (self.y_desc, y),
                                            _WEIGHTS: (self.forward_kernel, blocked.ctypes.data),
                                            _BIAS: (self.bias_desc, bias)})

    def run_input_grad(self, y_grad: int, kernel: int, x_grad: int) -> None:
        """``x_grad``: the gradient with respect to ``x`` of ``sum(y_grad * conv(x, kernel))``."""
        with self.dnn.lock:
            blocked = self._reordered_kernel(kernel, self.to_input_grad_kernel, self.input_grad_kernel)
            self.dnn.execute(self.input_grad, {_DIFF_DST: (self.y_desc, y_grad), _DIFF_SRC: (self.x_desc, x_grad),
                                               _WEIGHTS: (self.input_grad_kernel, blocked.ctypes.data)})

    def run_kernel_grad(self, x: int, y_grad: int, kernel_grad: int, bias_grad: int) -> None:
        """The gradients with respect to the kernel and the bias of ``sum(y_grad * (conv(x, kernel) + bias))``."""
        blocked = self._buffer(self.kernel_grad_kernel)
        with self.dnn.lock:
            self.dnn.execute(self.kernel_grad, {_SRC: (self.x_desc, x), _DIFF_DST: (self.y_desc, y_grad),
                                                _DIFF_WEIGHTS: (self.kernel_grad_kernel, blocked.ctypes.data),
                                                _DIFF_BIAS: (self.bias_desc, bias_grad)})
            self.dnn.execute(self.from_kernel_grad_kernel, {_SRC: (self.kernel_grad_kernel, blocked.ctypes.data),
                                                            _DST: (self.kernel_desc, kernel_grad)})


@functools.lru_cache(maxsize=64)
def _plan(x_shape: tuple[int, ...], kernel_shape: tuple[int, ...], relu: bool = False) -> _ConvPlan:
    return _ConvPlan(x_shape, kernel_shape, relu)


# XLA's FFI (xla/ffi/api/c_api.h, API 0.x): the call frame a handler receives, read through ctypes so that the
# handler is a Python function working on XLA's own buffers, with no copy.
class _ExtensionBase(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("type", ctypes.c_int), ("next", _HANDLE)]


class _ApiVersion(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("major", ctypes.c_int),
                ("minor", ctypes.c_int)]


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
                ("api", _HANDLE), ("ctx", _HANDLE), ("stage", ctypes.c_int), ("args", _Buffers),
                ("rets", _Buffers), ("attrs", _Buffers), ("future", _HANDLE)]


class _ErrorCreateArgs(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("extension_start", _HANDLE), ("message", ctypes.c_char_p),
                ("errc", ctypes.c_int)]


_FFI_API_VERSION = (0, 1)
_FFI_METADATA_EXTENSION, _FFI_ERROR_INTERNAL = 1, 13
_ERROR_CREATE_OFFSET = 48  # XLA_FFI_Api: struct_size, extension_start, api_version (24 bytes), internal_api
_HANDLER = ctypes.CFUNCTYPE(_HANDLE, ctypes.POINTER(_CallFrame))
_ERROR_CREATE = ctypes.CFUNCTYPE(_HANDLE, ctypes.POINTER(_ErrorCreateArgs))


def _buffers(buffers: _Buffers) -> list[tuple[int, tuple[int, ...]]]:
    """``(data pointer, shape)`` of each buffer of an FFI argument or result list."""
    out = []
    for i in range(buffers.size):
        buffer = ctypes.cast(buffers.buffers[i], ctypes.POINTER(_Buffer)).contents
        out.append((buffer.data, tuple(buffer.dims[d] for d in range(buffer.rank))))
    return out


def _ffi_error(frame: _CallFrame, message: str) -> int:
    """An XLA_FFI_Error carrying ``message``, made by the API of ``frame``."""
    create = _ERROR_CREATE(ctypes.cast(frame.api + _ERROR_CREATE_OFFSET, ctypes.POINTER(_HANDLE)).contents.value)
    args = _ErrorCreateArgs(ctypes.sizeof(_ErrorCreateArgs), None, message.encode(), _FFI_ERROR_INTERNAL)
    return create(ctypes.byref(args))


def _ffi_handler(run):
    """An XLA FFI handler (a C function pointer) calling ``run(args, rets)`` on ``(pointer, shape)`` lists.

    It answers XLA's metadata query (API version, no traits) and turns exceptions into XLA errors.
    """
    def handler(frame_pointer):
        frame = frame_pointer.contents
        if frame.extension_start and frame.extension_start.contents.type == _FFI_METADATA_EXTENSION:
            metadata = ctypes.cast(frame.extension_start, ctypes.POINTER(_MetadataExtension)).contents.metadata
            metadata.contents.api_version.major, metadata.contents.api_version.minor = _FFI_API_VERSION
            metadata.contents.traits = 0
            return None
        try:
            run(_buffers(frame.args), _buffers(frame.rets))
        except Exception as error:  # noqa: BLE001 -- reported to XLA, which raises it in the caller
            return _ffi_error(frame, f"oneDNN convolution failed: {error!r}")
        return None
    return _HANDLER(handler)


def _forward_runner(relu: bool):
    def run(args, rets):
        (x, x_shape), (kernel, kernel_shape), (bias, _) = args
        _plan(x_shape, kernel_shape, relu).run_forward(x, kernel, bias, rets[0][0])
    return run


def _run_input_grad(args, rets):
    (y_grad, _), (kernel, kernel_shape) = args
    (x_grad, x_shape), = rets
    _plan(x_shape, kernel_shape).run_input_grad(y_grad, kernel, x_grad)


def _run_kernel_grad(args, rets):
    (x, x_shape), (y_grad, _) = args
    (kernel_grad, kernel_shape), (bias_grad, _) = rets
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
    handlers = {name: _ffi_handler(run) for name, run in _TARGETS.items()}
    for name, handler in handlers.items():
        jax.ffi.register_ffi_target(name, new_capsule(ctypes.cast(handler, _HANDLE), None, None), platform="cpu")
    return handlers


def _ffi(target: str, out_shapes, *arrays: jax.Array):
    """Call FFI ``target`` on ``arrays``, giving float32 arrays of ``out_shapes`` (a shape or a list of shapes).

    Checks, at trace time, that oneDNN loads and that JAX runs on the CPU.
    """
    if jax.default_backend() != "cpu":
        raise OneDnnError(f"conv_impl 'onednn' runs on the CPU only; JAX's backend here is {jax.default_backend()!r} "
                          "(use conv_impl 'auto' or 'xla')")
    _onednn()
    _register_targets()
    if isinstance(out_shapes, list):
        results = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in out_shapes]
    else:
        results = jax.ShapeDtypeStruct(out_shapes, jnp.float32)
    return jax.ffi.ffi_call(target, results, vmap_method="sequential")(*arrays)


def _check(*arrays: jax.Array) -> None:
    if any(array.dtype != jnp.float32 for array in arrays):
        raise TypeError(f"conv_onednn takes float32 arrays, got {[str(array.dtype) for array in arrays]}")


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
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
    """
    _check(x, kernel, bias)
    k, _, _, f = kernel.shape
    n, h, w, _ = x.shape
    target = "bayesrb_onednn_conv_relu_forward" if relu else "bayesrb_onednn_conv_forward"
    return _ffi(target, (n, h - k + 1, w - k + 1, f), x, kernel, bias)


def _forward(x, kernel, bias, relu):
    y = conv_onednn(x, kernel, bias, relu)
    return y, (x, kernel, y if relu else None)


def _backward(relu, residuals, y_grad):
    x, kernel, y = residuals
    if relu:
        y_grad = jnp.where(y > 0, y_grad, 0.0)
    kernel_grad, bias_grad = _ffi("bayesrb_onednn_conv_kernel_grad", [kernel.shape, kernel.shape[-1:]], x, y_grad)
    return _ffi("bayesrb_onednn_conv_input_grad", x.shape, y_grad, kernel), kernel_grad, bias_grad


conv_onednn.defvjp(_forward, _backward)
