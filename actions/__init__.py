"""The custom action server: one generic action answering from the curated fact store."""
