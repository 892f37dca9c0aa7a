"""reporting/figures/gradient_flow.py: dE/dx_k against central finite differences."""

import jax
import jax.numpy as jnp
import numpy as np

from training import train
from experiments import temporal_order
from reporting.figures import gradient_flow


def test_state_gradients_match_finite_differences():
  config = temporal_order.get_config('length=12,smoke')
  config.model.hidden_size = 6
  config.task.batch_size = 3
  steps = train.build(config)
  params = steps.init(jax.random.key(0), {'omega_alpha': 0.0, 'l1_weight': 0.0,
                                          'bptt_clip': 0.0}, {}).params
  batch = steps.task.train_batch(jax.random.key(1), 0)
  g = np.asarray(gradient_flow.state_gradients(steps, params, batch))
  t, b = batch['inputs'].shape[:2]
  hp = {'omega_alpha': 0.0, 'l1_weight': 0.0, 'bptt_clip': 0.0}

  def loss_with_state_nudged(k, direction, eps):
    probe = jnp.zeros((t, b, 6)).at[k].set(eps * direction)
    return float(steps.loss_fn(params, [probe], batch, hp, jax.random.key(0), train=False)[0])

  rng = np.random.default_rng(0)
  checked = 0
  for k in (0, 5, t - 1):
    d = jnp.asarray(rng.normal(size=(b, 6)), jnp.float32)
    eps = 1e-2
    fd = (loss_with_state_nudged(k, d, eps) - loss_with_state_nudged(k, d, -eps)) / (2 * eps)
    assert abs(fd) > 1e-4     # large enough for the comparison to mean something
    np.testing.assert_allclose(np.sum(g[k] * np.asarray(d)), fd, rtol=2e-2, atol=1e-6)
    checked += 1
  assert checked == 3
  # The profile is the batch mean of the per-sequence norms.
  prof = np.asarray(gradient_flow.profile(steps, params, batch))
  np.testing.assert_allclose(prof, np.linalg.norm(g, axis=-1).mean(axis=1), rtol=1e-5)
