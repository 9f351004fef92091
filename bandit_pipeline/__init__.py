"""Thompson-sampling exploration for new items in an e-commerce recommender."""

__version__ = "0.1.0"
