"""pytest plugin (fixtures); see module body."""
