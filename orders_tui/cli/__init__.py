"""The `orders-tui` command (`main`): a module per subcommand, shared options in `options`."""
