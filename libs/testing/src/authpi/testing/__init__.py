"""AuthPI testing."""
