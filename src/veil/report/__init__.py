"""The audit report: JSON (audit) and its HTML view (html)."""
