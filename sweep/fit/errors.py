"""What the fitting code raises when the data cannot give a fit: too few points, nothing to fit."""


class FitError(Exception):
    """The runs given cannot be fitted as asked; the message says why and what to do."""
