"""The sweep's report: figures (PNG and SVG) and one self-contained HTML page (`sweep report DIR`)."""
