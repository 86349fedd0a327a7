"""veil: find every face in photos and video and erase it irreversibly."""

__version__ = "0.1.0"
