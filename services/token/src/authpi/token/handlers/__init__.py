"""The token service's write path: one module per aggregate, every write through the event
store's execute."""
