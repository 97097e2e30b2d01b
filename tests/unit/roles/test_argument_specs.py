"""Each role's meta/argument_specs.yml documents exactly the variables of its defaults/main.yml."""

import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
ROLES = sorted(r for r in os.listdir(os.path.join(ROOT, 'roles'))
               if os.path.exists(os.path.join(ROOT, 'roles', r, 'defaults', 'main.yml')))


def load(role, *path):
    with open(os.path.join(ROOT, 'roles', role, *path)) as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize('role', ROLES)
def test_argument_specs_match_defaults_key_for_key(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(options) == sorted(defaults)
    for name, spec in options.items():
        assert name.startswith(role + '_'), name
        if 'default' in spec:
            assert spec['default'] == defaults[name], name
