"""The plugin host: hooks, specs, the data contract, the registry, plugin loading, the plugin test kit, scaffolding."""
