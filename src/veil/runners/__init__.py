"""Runners: the one-shot pipeline, segments, the batch and Ray engines, live; they only arrange stages."""
