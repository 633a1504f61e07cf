"""posecli's version, on the ground floor so that any stage may name it."""

__version__ = "0.1.0"
