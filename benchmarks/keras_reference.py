"""Speed of the published method's stack on this machine: the GOTO VGG6-like CNN in Keras/TensorFlow on the CPU.

The reference for ``bayesrb benchmark-model``: the same network (two blocks of two 3x3 'valid' convolutions with
16 and 32 filters, each block ending in a 2x2 max pool, a 256-unit dense layer, dropout and one sigmoid output)
on the same random 55x55x4 stamps held in memory, timed the same way (median training step after a warm-up;
wall time of scoring 10,000 candidates with S Monte Carlo dropout samples, every sample a whole forward pass as in
the published method). TensorFlow is not a dependency of bayesrb; run this in its own environment::

    python -m venv /tmp/keras && /tmp/keras/bin/pip install tensorflow-cpu
    /tmp/keras/bin/python benchmarks/keras_reference.py

and ``bayesrb benchmark-model`` right after it, so that both see the same machine; or let
``bayesrb benchmark-model --compare-keras /tmp/keras/bin/python`` run both, in that order, and print the ratios.

TensorFlow's CPU convolutions are oneDNN's only where its oneDNN operations are on: by default only on CPUs with
AVX-512 VNNI or newer, so that on others (AVX2 machines) Keras runs Eigen's, about half as fast. ``--onednn on``
(the default here) turns them on wherever TensorFlow can (``TF_ENABLE_ONEDNN_OPTS=1``), so that Keras is measured
at its fastest; ``--onednn default`` leaves TensorFlow's own choice. The first line printed says which was in effect.
"""

import argparse
import os
import statistics
import time

import numpy as np

STAMP_SHAPE = (55, 55, 4)
ONEDNN_SETTINGS = {"on": "1", "off": "0"}

tf = keras = None  # imported by main(), after the oneDNN setting is in the environment


def vgg6(dropout_rate: float = 0.5):
    """The default network of bayesrb, written in Keras."""
    conv = dict(kernel_size=3, padding="valid", activation="relu")
    return keras.Sequential([
        keras.Input(STAMP_SHAPE),
        keras.layers.Conv2D(16, **conv), keras.layers.Conv2D(16, **conv), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, **conv), keras.layers.Conv2D(32, **conv), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(256, activation="relu"),
        keras.layers.Dropout(dropout_rate),
        keras.layers.Dense(1, activation="sigmoid"),
    ])


def compiled_model():
    """:func:`vgg6` compiled as the published method trains it (Adam, binary cross-entropy)."""
    model = vgg6()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    return model


def training_stamps_per_s(stamps: np.ndarray, labels: np.ndarray, batch_size: int, steps: int) -> float:
    """Throughput of the median training step: ``train_on_batch`` on one batch in memory, after warm-up steps.

    Each step returns its loss as a number, so it has finished when timed, as bayesrb's steps are (a batch held in
    memory, each step waited for). Per-batch callbacks of ``model.fit`` would not do: they time only part of
    Keras's loop.
    """
    model = compiled_model()
    x, y = stamps[:batch_size], labels[:batch_size]
    for _ in range(3):
        model.train_on_batch(x, y)
    seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
    return batch_size / statistics.median(seconds)


def fit_stamps_per_s(stamps: np.ndarray, labels: np.ndarray, batch_size: int, steps: int) -> float:
    """Throughput of one epoch of ``model.fit`` on ``steps`` batches of arrays in memory, after a warm-up epoch.

    This is Keras's whole training loop, its input handling included (bayesrb's own loop reports its speed per epoch
    in a training directory's ``history.json``).
    """
    model = compiled_model()
    n = batch_size * steps
    model.fit(stamps[:n], labels[:n], batch_size=batch_size, epochs=1, verbose=0)
    start = time.perf_counter()
    model.fit(stamps[:n], labels[:n], batch_size=batch_size, epochs=1, verbose=0)
    return n / (time.perf_counter() - start)


def mc_dropout_seconds(stamps: np.ndarray, samples: int, batch_size: int, compiled: bool) -> float:
    """Wall seconds to draw ``samples`` dropout forward passes of every stamp (after a warm-up call)."""
    model = vgg6()
    forward = tf.function(lambda x: model(x, training=True)) if compiled else (lambda x: model(x, training=True))
    batches = [tf.constant(stamps[i:i + batch_size]) for i in range(0, len(stamps), batch_size)]
    forward(batches[0])
    start = time.perf_counter()
    for _ in range(samples):
        for batch in batches:
            forward(batch).numpy()
    return time.perf_counter() - start


def convolution_lines(batch_size: int = 128, repeats: int = 20):
    """Wall milliseconds of TensorFlow's three calls for each convolution of :func:`vgg6`, one line per layer.

    The same layers, shapes, order and line format as ``bayesrb.bench.model.convolution_lines`` (forward with bias
    and ReLU, input gradient, kernel and bias gradient; each a ``tf.function`` on arrays already in TensorFlow,
    timed by its median call).
    """
    rng = np.random.default_rng(0)
    layers, rows = [(4, 16), (16, 16), (16, 32), (32, 32)], STAMP_SHAPE[0]
    for index, (channels, features) in enumerate(layers):
        args = (tf.constant(rng.standard_normal((batch_size, rows, rows, channels), dtype=np.float32)),
                tf.constant(0.1 * rng.standard_normal((3, 3, channels, features), dtype=np.float32)),
                tf.zeros(features),
                tf.constant(rng.standard_normal((batch_size, rows - 2, rows - 2, features), dtype=np.float32)))
        times = {name: median_call_ms(tf.function(call), args, repeats) for name, call in CONVOLUTION_CALLS.items()}
        yield (f"conv {rows}x{rows}x{channels}->{features}: "
               + ", ".join(f"{name} {ms:.1f} ms" for name, ms in times.items()))
        rows = rows - 2 if index % 2 == 0 else (rows - 2) // 2


#: What :func:`convolution_lines` times, as functions of ``(x, kernel, bias, y_grad)``.
CONVOLUTION_CALLS = {
    "forward": lambda x, kernel, bias, y_grad: tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "VALID") + bias),
    "input gradient": lambda x, kernel, bias, y_grad: tf.compat.v1.nn.conv2d_backprop_input(
        x.shape, kernel, y_grad, [1, 1, 1, 1], "VALID"),
    "kernel gradient": lambda x, kernel, bias, y_grad: (tf.compat.v1.nn.conv2d_backprop_filter(
        x, kernel.shape, y_grad, [1, 1, 1, 1], "VALID"), tf.reduce_sum(y_grad, axis=(0, 1, 2))),
}


def median_call_ms(function, args, repeats: int) -> float:
    """Median wall milliseconds of ``function(*args)``, its result brought to NumPy (after a warm-up call)."""
    tf.nest.map_structure(lambda t: t.numpy(), function(*args))
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), function(*args))
        seconds.append(time.perf_counter() - start)
    return 1e3 * statistics.median(seconds)


def import_tensorflow(onednn: str) -> None:
    """Import TensorFlow and Keras with its oneDNN operations ``on``, ``off`` or as it chooses (``default``)."""
    global tf, keras
    if onednn in ONEDNN_SETTINGS:
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = ONEDNN_SETTINGS[onednn]
    import tensorflow
    from tensorflow import keras as tf_keras

    tf, keras = tensorflow, tf_keras


def onednn_state() -> str:
    """``"on"`` or ``"off"``: whether TensorFlow's oneDNN operations are in effect (``"unknown"`` if it cannot say)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return "unknown"
    return "on" if _pywrap_util_port.IsMklEnabled() else "off"


def main() -> None:
    """Print the training speed at each batch size, and the Monte Carlo dropout scoring times."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="timed training steps (default 50)")
    parser.add_argument("--candidates", type=int, default=10_000, help="stamps scored (default 10,000)")
    parser.add_argument("--samples", type=int, default=50, help="dropout samples when compiled (default 50)")
    parser.add_argument("--eager-samples", type=int, default=10,
                        help="dropout samples timed in the eager loop, scaled to --samples (default 10; 0: skip it)")
    parser.add_argument("--batch-sizes", default="64,128",
                        help="training batch sizes, comma-separated (default 64,128)")
    parser.add_argument("--onednn", choices=("on", "default", "off"), default="on",
                        help="TensorFlow's oneDNN operations: on wherever possible (default), TensorFlow's own "
                             "choice for this CPU, or off")
    parser.add_argument("--convolutions", action="store_true",
                        help="time each convolution's forward, input-gradient and kernel-gradient calls instead, at "
                             "the first of --batch-sizes")
    args = parser.parse_args()
    import_tensorflow(args.onednn)
    batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
    if args.convolutions:
        print(f"TensorFlow {tf.__version__}, oneDNN {onednn_state()}, batch {batch_sizes[0]}")
        for line in convolution_lines(batch_sizes[0]):
            print(line, flush=True)
        return
    rng = np.random.default_rng(0)
    stamps = rng.standard_normal((max(args.candidates, max(batch_sizes) * args.steps), *STAMP_SHAPE),
                                 dtype=np.float32)
    labels = rng.integers(0, 2, len(stamps)).astype(np.float32)
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {threads} threads, oneDNN {onednn_state()}")
    for batch_size in batch_sizes:
        rate = training_stamps_per_s(stamps, labels, batch_size, args.steps)
        print(f"training, batch {batch_size}: {rate:.0f} stamps/s (median step)", flush=True)
        rate = fit_stamps_per_s(stamps, labels, batch_size, args.steps)
        print(f"model.fit, batch {batch_size}: {rate:.0f} stamps/s (one epoch of arrays in memory)", flush=True)
    scored = stamps[:args.candidates]
    compiled = mc_dropout_seconds(scored, args.samples, 1024, compiled=True)
    print(f"MC dropout {args.candidates} x {args.samples}, tf.function: {compiled:.1f} s", flush=True)
    if args.eager_samples < 1:
        return
    eager = mc_dropout_seconds(scored, args.eager_samples, 1024, compiled=False)
    scaled = eager * args.samples / args.eager_samples
    print(f"MC dropout {args.candidates} x {args.samples}, eager loop: {scaled:.1f} s "
          f"({eager:.1f} s for {args.eager_samples} samples)", flush=True)


if __name__ == "__main__":
    main()
