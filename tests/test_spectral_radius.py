"""``train.spectral_radius``, the logged rho of W_rec [H, gates H], against
matrices whose eigenvalues are known by construction."""

import numpy as np
import pytest

from training import train

H = 4


def block(radius, real, angle, seed):
  """An [H, H] gate block with eigenvalues ``radius * exp(+-i angle)`` and
  ``real`` (two values): a rotation-scaling and a diagonal, block-diagonal,
  then conjugated by a random matrix, so the block is not normal (its largest
  singular value exceeds its spectral radius) and its eigenvalues complex."""
  c, s = np.cos(angle), np.sin(angle)
  inner = np.zeros((H, H))
  inner[:2, :2] = radius * np.array([[c, -s], [s, c]])
  inner[2:, 2:] = np.diag(real)
  p = np.eye(H) + 0.5 * np.random.default_rng(seed).normal(size=(H, H))
  return p @ inner @ np.linalg.inv(p)


@pytest.mark.parametrize('gates,largest', [(1, 0), (3, 1), (4, 3)])
def test_spectral_radius_is_the_largest_over_gate_blocks(gates, largest):
  """Block k's radius is known: max(radius_k, |real_k|); W_rec's is the
  largest over the gate blocks, whichever block holds it."""
  radii = [0.6, 0.8, 0.5, 0.7][:gates]
  reals = [(0.3, -0.4), (0.2, 0.1), (-0.45, 0.3), (0.1, 0.2)][:gates]
  radii[largest] = 1.3
  blocks = [block(r, re, 0.9, seed=k) for k, (r, re) in enumerate(zip(radii, reals))]
  w = np.concatenate(blocks, axis=1).astype(np.float32)
  assert w.shape == (H, gates * H)
  want = max(max(r, *np.abs(re)) for r, re in zip(radii, reals))
  assert want == 1.3
  assert train.spectral_radius(w) == pytest.approx(want, rel=1e-5)
  # not a norm: each block's largest singular value is larger than its radius
  assert all(np.linalg.norm(b, 2) > 1.1 * max(r, *np.abs(re))
             for b, r, re in zip(blocks, radii, reals))


def test_spectral_radius_of_a_negative_real_eigenvalue():
  """The modulus, not the real part: the largest eigenvalue is -0.9."""
  w = block(0.5, (-0.9, 0.2), 0.3, seed=7)
  assert train.spectral_radius(w) == pytest.approx(0.9, rel=1e-6)


@pytest.mark.parametrize('bad', [np.nan, np.inf])
def test_spectral_radius_of_a_diverged_matrix_is_nan(bad):
  w = np.concatenate([block(0.5, (0.1, 0.2), 0.4, seed=k) for k in range(3)], axis=1)
  w[2, 9] = bad           # in the last gate block
  assert np.isnan(train.spectral_radius(w))
