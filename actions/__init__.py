"""The action server: a thin Rasa SDK adapter around the product core (clinic/)."""
