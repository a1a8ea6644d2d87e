"""Attribute inference through black-box students: ``classifier`` (per photo), ``aggregate`` (per person)."""
