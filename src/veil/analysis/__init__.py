"""Analysis: zones painted first, classes and presets, detectors, tracking; one analysis loop (scan)."""
