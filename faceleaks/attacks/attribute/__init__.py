"""Attribute inference through black-box students: ``classifier`` (per photo), ``aggregate`` (per person).

Importing the package registers the attribute attacks (``registry.ATTRIBUTE_ATTACKS``).
"""

from faceleaks.attacks.attribute import classifier as _classifier  # noqa: F401  (registers the attacks)
