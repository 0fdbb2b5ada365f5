"""Free text in, bounded label values out: one module per vocabulary (decline codes, failure
and error classes, client classes, countries, currencies, HTTP methods and statuses, route
templates, tokens). ``exporter.classify`` re-exports their public names."""
