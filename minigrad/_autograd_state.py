"""Per-thread autograd switches, read by the graph recorder (``Function.__call__``) and the graph
walk (``Tensor.backward``) and set by ``no_grad``/``enable_grad`` and ``detect_anomaly``. A
module of its own so that ``minigrad.tensor`` needs neither ``minigrad.function`` nor
``minigrad.anomaly``. Attributes of ``state`` (absent until first set):

* ``grad_enabled``: whether ops record the graph (absent: True);
* ``anomaly_forward``, ``anomaly_backward``: the checks ``detect_anomaly()`` installs (absent:
  None, nothing is checked).
"""
import threading

state = threading.local()
