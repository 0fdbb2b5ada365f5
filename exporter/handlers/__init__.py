"""The exporter's HTTP handlers, one module per endpoint family; ``exporter.app`` wires them."""
