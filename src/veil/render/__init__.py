"""Rendering: masks, painting a plan's boxes onto frames (paint), and verify."""
