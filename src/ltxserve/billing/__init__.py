"""Keys, prices and the credits ledger. Nothing here knows HTTP or tensors."""
