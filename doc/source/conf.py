"""Sphinx configuration of the freezer-dr documentation."""
import importlib.util
import os
import sys

# Build from the checkout, so `.. show-options::` reads the options of the
# code next to these docs.
sys.path.insert(0, os.path.abspath(os.path.join(__file__, '..', '..', '..')))
# This documentation's own Sphinx extensions (doc/ext/).
sys.path.insert(0, os.path.abspath(os.path.join(__file__, '..', '..', 'ext')))

project = 'freezer-dr'
copyright = 'freezer-dr developers'
author = 'freezer-dr developers'

extensions = [
    'oslo_config.sphinxext',
    # ``.. freezer-dr-cli:: PROG``: command references from the parsers
    'cli_reference',
]

source_suffix = {'.rst': 'restructuredtext'}
root_doc = 'index'
exclude_patterns = ['_build']
pygments_style = 'sphinx'
# [section] option names in the text are never cross-references.
default_role = 'literal'

if importlib.util.find_spec('openstackdocstheme') is not None:
    extensions.append('openstackdocstheme')
    html_theme = 'openstackdocs'
    openstackdocs_repo_name = 'openstack/freezer-dr'
    openstackdocs_use_storyboard = False
    openstackdocs_auto_name = False
else:
    html_theme = 'alabaster'

html_title = 'freezer-dr'
