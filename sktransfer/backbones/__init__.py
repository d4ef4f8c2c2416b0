"""Built-in backbone plugins, one module per family, registered like third-party plugins."""
