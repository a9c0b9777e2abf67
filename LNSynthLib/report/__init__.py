"""report.md, metrics.json and PNG figures of an evaluation."""
