"""KIS Open API adapters for orderlane (paper and live) and a fake KIS venue for tests."""
