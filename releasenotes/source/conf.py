"""Sphinx configuration of the freezer-dr release notes (reno)."""
import importlib.util

project = 'freezer-dr Release Notes'
copyright = 'freezer-dr developers'
author = 'freezer-dr developers'

extensions = [
    'reno.sphinxext',
]

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'sphinx'
# pbr derives the version from git; release notes are per series.
version = ''
release = ''

if importlib.util.find_spec('openstackdocstheme') is not None:
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'openstack/freezer-dr'
    openstackdocs_use_storyboard = False
    openstackdocs_auto_name = False
else:
    html_theme = 'alabaster'

html_title = 'freezer-dr Release Notes'
html_static_path = ['_static']
