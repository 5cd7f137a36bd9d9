"""Optimisers (SGD, Adam, AdamW) and schedules (StepLR, CosineAnnealingLR, OneCycleLR):
hand-computed updates, PyTorch's sequences, state_dict resume."""
import math

import numpy as np
import pytest

import minigrad
from minigrad import nn, optim
from minigrad.optim import lr_scheduler

GRADS = [0.5, -1.0, 2.0, 0.25]        # the gradient fed at each step in hand-computed tests


def _param(value=1.0):
    return nn.Parameter(np.array([value], dtype=np.float64))


def _run(optimizer, p, grads=GRADS):
    trajectory = []
    for g in grads:
        p.grad = np.array([g])
        optimizer.step()
        trajectory.append(float(p.data[0]))
    return trajectory


# -- hand-computed updates -------------------------------------------------------------------------
def _sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, p=1.0):
    out, buf = [], None
    for g in GRADS:
        g = g + weight_decay * p
        if momentum:
            buf = g if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
        out.append(p)
    return out


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, dampening=0.5),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1, nesterov=True),
    dict(lr=0.1, weight_decay=0.2),
])
def test_sgd_matches_hand_computed_updates(kwargs):
    p = _param()
    np.testing.assert_allclose(_run(optim.SGD([p], **kwargs), p), _sgd_reference(**kwargs),
                               rtol=1e-14)


def test_sgd_first_steps_by_hand():
    # momentum 0.9, lr 0.1: b1 = 0.5, p1 = 1 − 0.05; b2 = 0.45 − 1 = −0.55, p2 = p1 + 0.055
    p = _param()
    assert _run(optim.SGD([p], lr=0.1, momentum=0.9), p, GRADS[:2]) == pytest.approx(
        [0.95, 1.005], abs=1e-15)


def _adam_reference(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False,
                    p=1.0):
    out, m, v = [], 0.0, 0.0
    b1, b2 = betas
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (math.sqrt(v_hat) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("cls, kwargs, decoupled", [
    (optim.Adam, dict(lr=0.1), False),
    (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-3), False),
    (optim.Adam, dict(lr=0.1, weight_decay=0.5), False),
    (optim.AdamW, dict(lr=0.1), True),
    (optim.AdamW, dict(lr=0.1, weight_decay=0.5), True),
])
def test_adam_matches_hand_computed_updates(cls, kwargs, decoupled):
    p = _param()
    expected_kwargs = dict(kwargs)
    if cls is optim.AdamW:
        expected_kwargs.setdefault("weight_decay", 0.01)
    np.testing.assert_allclose(_run(cls([p], **kwargs), p),
                               _adam_reference(**expected_kwargs, decoupled=decoupled),
                               rtol=1e-12)


def test_adam_bias_correction_makes_the_first_step_lr_sized():
    # m̂ = g and v̂ = g² at t = 1, so the first step is lr · g / (|g| + eps) ≈ lr · sign(g)
    p = _param()
    _run(optim.Adam([p], lr=0.1), p, [-3.0])
    assert p.data[0] == pytest.approx(1.1, abs=1e-8)


def test_adamw_decay_is_decoupled_from_the_gradient():
    # zero gradient: Adam with weight decay moves by ≈ lr (the decay enters m/√v), AdamW by
    # exactly lr · wd · p
    p_adam, p_adamw = _param(2.0), _param(2.0)
    _run(optim.Adam([p_adam], lr=0.1, weight_decay=0.5), p_adam, [0.0])
    _run(optim.AdamW([p_adamw], lr=0.1, weight_decay=0.5), p_adamw, [0.0])
    assert p_adam.data[0] == pytest.approx(1.9, abs=1e-7)
    assert p_adamw.data[0] == pytest.approx(2.0 * (1 - 0.05), abs=1e-15)


def test_float32_parameters_stay_float32():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    for cls in (optim.SGD, optim.Adam, optim.AdamW):
        opt = cls([p], lr=0.1, weight_decay=0.1) if cls is not optim.AdamW else cls([p])
        p.grad = np.full(3, 0.5, dtype=np.float32)
        opt.step()
        assert p.data.dtype == np.float32 and p.data.flags.c_contiguous


# -- groups, zero_grad, validation -----------------------------------------------------------------
def test_param_groups_override_defaults_and_params_without_grad_are_skipped():
    a, b, c = _param(), _param(), _param()
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), np.array([1.0])
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == pytest.approx(0.0)
    assert c.data[0] == 1.0 and c not in opt.state
    opt.zero_grad(set_to_none=False)
    assert a.grad[0] == 0 and c.grad is None
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizer_argument_validation():
    p = _param()
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="eps"):
        optim.AdamW([p], eps=-1e-8)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="more than once"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="require grad"):
        optim.SGD([minigrad.tensor(np.zeros(2))], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.zeros(2)
    with pytest.raises(ValueError, match="gradient of shape"):
        opt.step()


# -- against PyTorch -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.01)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-4)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.3, betas=(0.8, 0.95))),
])
def test_optimizers_match_torch(name, kwargs):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,)]
    start = [rng.standard_normal(s) for s in shapes]
    mine = [nn.Parameter(a.copy()) for a in start]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in start]
    opt = getattr(optim, name)(mine, **kwargs)
    topt = getattr(torch.optim, name)(theirs, **kwargs)
    for _ in range(6):
        for p, tp in zip(mine, theirs):
            g = rng.standard_normal(p.shape)
            p.grad, tp.grad = g, torch.tensor(g)
        opt.step()
        topt.step()
    for p, tp in zip(mine, theirs):
        np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12, atol=1e-14)


# -- resume ---------------------------------------------------------------------------------------
def _train(model, opt, scheduler, steps, seed):
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        x = minigrad.tensor(rng.standard_normal((4, 3)).astype(np.float32))
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()
        scheduler.step()
    return model.state_dict()


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.AdamW(ps, lr=0.01),
])
def test_resume_from_a_checkpoint_is_bit_identical(make, tmp_path):
    def build():
        minigrad.manual_seed(0)
        model = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2))
        opt = make(list(model.parameters()))
        return model, opt, lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=8)

    model, opt, sched = build()
    _train(model, opt, sched, 4, seed=1)
    minigrad.save({"model": model.state_dict(), "optim": opt.state_dict(),
                   "sched": sched.state_dict(), "epoch": 4}, tmp_path / "ckpt.npz")
    expected = _train(model, opt, sched, 4, seed=2)

    model2, opt2, sched2 = build()
    checkpoint = minigrad.load(tmp_path / "ckpt.npz")
    model2.load_state_dict(checkpoint["model"])
    opt2.load_state_dict(checkpoint["optim"])
    sched2.load_state_dict(checkpoint["sched"])
    assert checkpoint["epoch"] == 4
    resumed = _train(model2, opt2, sched2, 4, seed=2)
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


def test_optimizer_state_dict_layout_is_a_copy():
    p = _param()
    opt = optim.Adam([p], lr=0.1)
    _run(opt, p, [1.0])
    state = opt.state_dict()
    assert state["param_groups"][0]["params"] == [0] and state["state"][0]["step"] == 1
    _run(opt, p, [1.0])
    assert state["state"][0]["step"] == 1 and state["state"][0]["exp_avg"][0] == \
        pytest.approx(0.1)


@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.1, weight_decay=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
])
def test_state_of_a_zero_dimensional_parameter_survives_a_round_trip(make, tmp_path):
    def steps(opt, p, grads):
        for g in grads:
            p.grad = np.array(g)
            opt.step()
        return float(p.data)

    p = nn.Parameter(np.array(2.0))
    assert p.shape == ()
    opt = make([p])
    steps(opt, p, [1.0, -0.5])
    minigrad.save(opt.state_dict(), tmp_path / "o.npz")
    twin = nn.Parameter(p.data.copy())
    opt2 = make([twin])
    opt2.load_state_dict(minigrad.load(tmp_path / "o.npz"))
    assert all(isinstance(v, np.ndarray) and v.shape == () for k, v in opt2.state[twin].items()
               if k != "step")
    assert steps(opt, p, [0.3]) == steps(opt2, twin, [0.3])


def test_optimizer_load_state_dict_refuses_mismatches():
    p, q = _param(), _param()
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    _run(opt, p, [1.0])
    state = opt.state_dict()
    with pytest.raises(ValueError, match="parameter group 0 has 1 parameters in the checkpoint"):
        optim.SGD([p, q], lr=0.1).load_state_dict(state)
    with pytest.raises(ValueError, match="1 parameter groups"):
        optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1).load_state_dict(state)
    state["state"][0]["momentum_buffer"] = np.zeros(5)
    with pytest.raises(ValueError, match="momentum_buffer.*shape"):
        optim.SGD([q], lr=0.1).load_state_dict(state)


# -- schedulers ------------------------------------------------------------------------------------
def _record(opt, scheduler, steps):
    """The lr and momentum (or β₁) of the first group before each of ``steps`` steps; works on
    minigrad's and on PyTorch's optimisers alike."""
    lrs, momenta = [], []
    for _ in range(steps):
        group = opt.param_groups[0]
        lrs.append(group["lr"])
        momenta.append(group["betas"][0] if "betas" in group else group["momentum"])
        opt.step()
        scheduler.step()
        assert scheduler.get_last_lr() == [opt.param_groups[0]["lr"]]
    return lrs, momenta


def _lrs(make_scheduler, steps, make_opt=lambda ps: optim.SGD(ps, lr=1.0, momentum=0.9)):
    opt = make_opt([_param()])
    return _record(opt, make_scheduler(opt), steps)


def test_step_lr_by_hand():
    lrs, _ = _lrs(lambda o: lr_scheduler.StepLR(o, step_size=3, gamma=0.5), 8)
    assert lrs == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_annealing_by_hand():
    lrs, _ = _lrs(lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=4, eta_min=0.2), 9)
    expected = [0.2 + 0.8 * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(9)]
    np.testing.assert_allclose(lrs, expected, atol=1e-12)   # and back up after T_max


def test_one_cycle_by_hand():
    lrs, momenta = _lrs(lambda o: lr_scheduler.OneCycleLR(o, max_lr=1.0, total_steps=11,
                                                          pct_start=0.3), 11)
    # warm-up ends at step 0.3·11 − 1 = 2.3: lr(t) = max + (initial − max)/2 · (cos(π t/2.3) + 1)
    initial, final = 1.0 / 25, 1.0 / 25 / 1e4
    assert lrs[0] == pytest.approx(initial) and momenta[0] == pytest.approx(0.95)
    assert lrs[1] == pytest.approx(1 + (initial - 1) / 2 * (math.cos(math.pi / 2.3) + 1))
    assert lrs[-1] == pytest.approx(final) and momenta[-1] == pytest.approx(0.95)
    assert max(lrs) < 1.0 and min(momenta) > 0.85


def test_one_cycle_refuses_stepping_past_total_steps_and_bad_args():
    opt = optim.SGD([_param()], lr=1.0)
    scheduler = lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    scheduler.step()
    scheduler.step()
    with pytest.raises(ValueError, match="total_steps is 2"):
        scheduler.step()
    with pytest.raises(ValueError, match="total_steps"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="step_size"):
        lr_scheduler.StepLR(opt, step_size=0)


SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.3), 12),
    ("CosineAnnealingLR", dict(T_max=5, eta_min=0.01), 23),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=20), 20),
    ("OneCycleLR", dict(max_lr=0.5, epochs=3, steps_per_epoch=7, pct_start=0.4,
                        anneal_strategy="linear", three_phase=True, div_factor=10.0,
                        final_div_factor=100.0), 21),
]


@pytest.mark.parametrize("name, kwargs, steps", SCHEDULES)
@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_schedules_match_torch(name, kwargs, steps, optimizer):
    torch = pytest.importorskip("torch")
    opt_kwargs = dict(lr=0.1, momentum=0.9) if optimizer == "SGD" else dict(lr=0.1)
    mine = _lrs(lambda o: getattr(lr_scheduler, name)(o, **kwargs), steps,
                lambda ps: getattr(optim, optimizer)(ps, **opt_kwargs))
    topt = getattr(torch.optim, optimizer)([torch.zeros(1, requires_grad=True)], **opt_kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert mine == _record(topt, tsched, steps)     # the very same floating-point sequence


def test_scheduler_state_dict_resumes_the_sequence():
    opt = optim.SGD([_param()], lr=1.0)
    scheduler = lr_scheduler.CosineAnnealingLR(opt, T_max=6)
    for _ in range(3):
        scheduler.step()
    state = scheduler.state_dict()
    assert "optimizer" not in state
    expected = []
    for _ in range(3):
        scheduler.step()
        expected.append(opt.param_groups[0]["lr"])
    opt2 = optim.SGD([_param()], lr=1.0)
    scheduler2 = lr_scheduler.CosineAnnealingLR(opt2, T_max=6)
    scheduler2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = state["_last_lr"][0]
    resumed = []
    for _ in range(3):
        scheduler2.step()
        resumed.append(opt2.param_groups[0]["lr"])
    assert resumed == expected


def test_one_cycle_with_a_warm_up_shorter_than_one_step():
    """4 steps with pct_start 0.25: the warm-up phase ends at step 0 (PyTorch divides by zero)."""
    import minigrad as mg
    p = mg.nn.Parameter(np.zeros(1, np.float32))
    opt = mg.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = mg.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=4, pct_start=0.25)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(3):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.1)          # the peak, reached at step 0
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
