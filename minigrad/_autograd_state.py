"""Per-thread autograd switches, read by the graph recorder (``Function.__call__``) and the graph
walk (``Tensor.backward``) and set by ``no_grad``/``enable_grad`` and ``detect_anomaly``. A
module of its own so that ``minigrad.tensor`` needs neither ``minigrad.function`` nor
``minigrad.anomaly``. Attributes of ``state`` (each thread starts from the class defaults):

* ``grad_enabled``: whether ops record the graph (True);
* ``anomaly_forward``, ``anomaly_backward``: the checks ``detect_anomaly()`` installs (None:
  nothing is checked);
* ``op_recorder``: the recorder of ``minigrad._trace`` (None: no op is recorded).
"""
import threading


class _State(threading.local):
    # Class defaults rather than getattr(state, name, default): every op reads these.
    grad_enabled = True
    anomaly_forward = None
    anomaly_backward = None
    op_recorder = None


state = _State()
