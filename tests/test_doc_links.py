"""Every link in README.md and RESULTS.md leads somewhere: a file or folder of
the repository, or a heading of the same page (GitHub's anchors)."""

import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = re.compile(r'\]\(([^)\s]+)\)')


def github_anchor(heading: str) -> str:
  """The anchor GitHub gives a heading: lower case, punctuation dropped
  (backticks, dots, commas, colons, parentheses, plus signs), spaces to hyphens."""
  return re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-')


def test_github_anchor_by_hand():
  assert github_anchor('At a glance') == 'at-a-glance'
  assert github_anchor('Pathological problems (Pascanu et al. sec. 4.1): `launch.py reproduce x.y`') == \
      'pathological-problems-pascanu-et-al-sec-41-launchpy-reproduce-xy'
  assert github_anchor('SGD+C row, 141.2 (2026-12-03)') == 'sgdc-row-1412-2026-12-03'


@pytest.mark.parametrize('page', ['README.md', 'RESULTS.md'])
def test_every_link_leads_somewhere(page):
  with open(os.path.join(ROOT, page)) as f:
    text = f.read()
  anchors = {github_anchor(h) for h in re.findall(r'^#+ (.+)$', text, flags=re.M)}
  broken = []
  for target in LINK.findall(text):
    if re.match(r'[a-z]+://', target):
      continue
    path, _, anchor = target.partition('#')
    if path and not os.path.exists(os.path.join(ROOT, path)):
      broken.append(target)
    elif not path and anchor not in anchors:
      broken.append(target)
  assert not broken, f'{page}: links to nothing: {broken}'
