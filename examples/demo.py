"""A tiny demo: fit a two-layer network to a noisy sine with plain gradient descent and print the
loss falling. Runs in a second; used by the README until the example networks exist."""
import numpy as np

import minigrad as mg
import minigrad.nn.functional as F

rng = np.random.default_rng(0)
x = rng.uniform(-3, 3, size=(256, 1)).astype(np.float32)
y = (np.sin(x) + 0.05 * rng.standard_normal(x.shape)).astype(np.float32)
X, Y = mg.tensor(x), mg.tensor(y)

w1 = mg.tensor(rng.standard_normal((1, 32)) * 1.0, requires_grad=True, dtype=np.float32)
b1 = mg.tensor(np.zeros(32), requires_grad=True, dtype=np.float32)
w2 = mg.tensor(rng.standard_normal((32, 1)) * 0.2, requires_grad=True, dtype=np.float32)
b2 = mg.tensor(np.zeros(1), requires_grad=True, dtype=np.float32)
params = [w1, b1, w2, b2]

for step in range(501):
    prediction = F.relu(X @ w1 + b1) @ w2 + b2
    loss = ((prediction - Y) ** 2).mean()
    for p in params:
        p.grad = None
    loss.backward()
    for p in params:
        p.data -= 0.05 * p.grad
    if step % 100 == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")
