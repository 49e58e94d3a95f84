"""Pictures of a run (filters, curves, unit activity) and the HTML report."""
