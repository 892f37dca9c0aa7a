"""Tests of reporting/figures/: Pascanu et al. (2013) Fig. 3 and Fig. 6 from independent math.

The references here are written from the equations alone: fixed points
checked by substitution, the folds from their closed form
``s(x) = (1 +- sqrt(1 - 4/w)) / 2`` (from ``w s(1 - s) = 1``), the error
``E = (s(x_50) - 0.7)^2`` by a plain float64 numpy loop, gradients by
central finite differences of that loop, and one point where the fixed point
and its derivatives are known by hand.
"""

import numpy as np
import pytest

from reporting.figures import dynamics
from reporting.figures import plots

W = 5.0


def sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


def closed_form_folds(w):
  """(x, b) of the two folds, ascending in b: w s'(x) = 1 and x = w s(x) + b."""
  s = (1.0 + np.array([1.0, -1.0]) * np.sqrt(1.0 - 4.0 / w)) / 2.0
  x = np.log(s / (1.0 - s))
  return x, x - w * s


def np_error(w, b, x0=0.5, target=0.7, length=50):
  x = x0
  for _ in range(length):
    x = w * sigmoid(x) + b
  return (sigmoid(x) - target) ** 2


@pytest.fixture(scope='module')
def diagram():
  return dynamics.bifurcation(w=W, b_range=(-4.0, -1.0), num_b=601)


# ---------------------------------------------------------------------------
# Fig. 3


def test_fixed_points_solve_the_map_and_stability_matches(diagram):
  x = diagram.x
  ok = ~np.isnan(x)
  residual = x - W * sigmoid(x) - diagram.b[:, None]
  assert np.abs(residual[ok]).max() < 1e-8
  slope = W * sigmoid(x) * (1.0 - sigmoid(x))
  np.testing.assert_array_equal(diagram.stable[ok], np.abs(slope[ok]) < 1.0)
  assert not diagram.stable[~ok].any()
  np.testing.assert_array_equal(diagram.count, ok.sum(axis=1))


def test_fold_points_match_closed_form():
  for w in (4.5, W, 8.0):
    x, b = closed_form_folds(w)
    fx, fb = dynamics.fold_points(w)
    # closed_form_folds is ascending in b, fold_points ascending in x.
    np.testing.assert_allclose(fx, x[::-1], atol=1e-10)
    np.testing.assert_allclose(fb, b[::-1], atol=1e-10)
  assert len(dynamics.fold_points(4.0)[0]) == 0


def test_three_fixed_points_inside_the_bistable_interval_one_outside(diagram):
  (_, _), (b_lo, b_hi) = closed_form_folds(W)
  assert b_lo == pytest.approx(-2.6556, abs=1e-4) and b_hi == pytest.approx(-2.3444, abs=1e-4)
  b = diagram.b
  inside = (b > b_lo + 1e-9) & (b < b_hi - 1e-9)
  assert inside.sum() > 50
  assert (diagram.count[inside] == 3).all()
  assert (diagram.count[~inside] == 1).all()
  # Inside: stable, unstable (the basin boundary), stable, in ascending x.
  np.testing.assert_array_equal(diagram.stable[inside],
                                np.tile([True, False, True], (inside.sum(), 1)))


def test_fixed_point_count_right_at_the_folds():
  # Just inside a fold two of the three roots are ~1e-3 apart; the grid holds
  # the fold states, so they are still told apart.
  (_, _), (b_lo, b_hi) = closed_form_folds(W)
  for eps in (1e-6, 1e-4):
    near = dynamics.bifurcation(W, (b_lo + eps, b_hi - eps), num_b=2, num_x=101)
    np.testing.assert_array_equal(near.count, [3, 3])
    far = dynamics.bifurcation(W, (b_lo - eps, b_hi + eps), num_b=2, num_x=101)
    np.testing.assert_array_equal(far.count, [1, 1])


def test_one_fixed_point_without_bistability():
  bf = dynamics.bifurcation(w=3.0, b_range=(-4.0, 1.0), num_b=101)
  assert (bf.count == 1).all() and bf.stable[:, 0].all()


# ---------------------------------------------------------------------------
# Fig. 6


def test_error_surface_matches_numpy_loop():
  w_grid = np.array([-1.0, 2.0, 4.5, 6.0])
  b_grid = np.array([-3.0, -1.0, 0.5])
  e = dynamics.error_surface(w_grid, b_grid)
  assert e.shape == (4, 3)
  want = np.array([[np_error(w, b) for b in b_grid] for w in w_grid])
  np.testing.assert_allclose(e, want, atol=2e-6)
  assert want.max() > 0.4 and want.min() < 0.1  # both sides of the wall


def test_gradient_by_hand_at_a_known_fixed_point():
  # w = 2, b = -1: x* = 0 (2 s(0) - 1 = 0), w s'(0) = 1/2, so the state
  # converges from 0.5 as 2^-t. Then s(x_50) = 1/2, E = 0.04 and, with
  # dx*/db = 1 / (1 - w s') = 2 and dx*/dw = s(x*) dx*/db = 1,
  # dE/d(w, b) = 2 (1/2 - 0.7) s'(0) (1, 2) = (-0.1, -0.2).
  assert dynamics.error_surface(np.array([2.0]), np.array([-1.0]))[0, 0] == pytest.approx(
      0.04, abs=1e-7)
  np.testing.assert_allclose(dynamics.grad_loss(2.0, -1.0), [-0.1, -0.2], atol=1e-6)


@pytest.mark.parametrize('w,b,rtol', [(4.0, -2.0, 1e-4), (6.0, -3.0, 1e-4),
                                      (4.5728, -2.3468, 2e-3)])  # last: foot of the wall
def test_gradient_matches_finite_differences(w, b, rtol):
  w32, b32 = float(np.float32(w)), float(np.float32(b))  # the point jax sees
  h = 1e-5
  fd = np.array([(np_error(w32 + h, b32) - np_error(w32 - h, b32)) / (2 * h),
                 (np_error(w32, b32 + h) - np_error(w32, b32 - h)) / (2 * h)])
  np.testing.assert_allclose(dynamics.grad_loss(w, b), fd, rtol=rtol)


def test_trajectory_rows_and_first_step():
  lr = 0.25
  run = dynamics.descent_trajectory(5.0, -2.0, lr, 5)
  assert run.shape == (6, 3)
  np.testing.assert_allclose(run[0, :2], [5.0, -2.0])
  np.testing.assert_allclose(run[:, 2], [np_error(w, b) for w, b in run[:, :2]], atol=2e-6)
  np.testing.assert_allclose(run[1, :2], run[0, :2] - lr * dynamics.grad_loss(5.0, -2.0),
                             rtol=1e-6)


def test_clipped_steps_never_exceed_lr_times_threshold():
  lr, clip = plots.FIG6_LR, plots.FIG6_CLIP
  args = (*plots.FIG6_START, lr, 60)
  plain = dynamics.descent_trajectory(*args)
  clipped = dynamics.descent_trajectory(*args, clip=clip)
  plain_steps = np.linalg.norm(np.diff(plain[:, :2], axis=0), axis=1)
  clipped_steps = np.linalg.norm(np.diff(clipped[:, :2], axis=0), axis=1)
  assert clipped_steps.max() <= lr * clip * (1 + 1e-5)
  # Not vacuous: the plain run meets the wall and jumps far (the Fig. 6 story).
  assert plain_steps.max() > 20 * lr * clip
  assert plain[-1, 2] > 0.08 and clipped[-1, 2] < 0.02
  # A threshold nothing reaches changes nothing.
  np.testing.assert_allclose(dynamics.descent_trajectory(*args, clip=1e6), plain, rtol=1e-6)


def test_new_learning_rate_and_threshold_do_not_recompile():
  dynamics.descent_trajectory(5.0, -2.0, 0.1, 7, clip=0.3)
  size = dynamics._descend._cache_size()
  dynamics.descent_trajectory(4.0, -1.0, 0.2, 7, clip=0.9)
  assert dynamics._descend._cache_size() == size


# ---------------------------------------------------------------------------
# Drawing


def _is_png(path):
  with open(path, 'rb') as f:
    return f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_plot_fig3_writes_png(tmp_path):
  path = plots.plot_fig3(str(tmp_path / 'fig3.png'))
  assert _is_png(path) and (tmp_path / 'fig3.png').stat().st_size > 1000


def test_plot_fig6_writes_png(tmp_path):
  path = plots.plot_fig6(str(tmp_path / 'sub' / 'fig6.png'), num_w=21, num_b=31, num_zoom=31)
  assert _is_png(path) and (tmp_path / 'sub' / 'fig6.png').stat().st_size > 1000
