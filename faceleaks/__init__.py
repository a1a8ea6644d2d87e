"""faceleaks."""
