"""The product core, shared by the Rasa server and the action server, with no Rasa imports.

The fact store and its schema, the dialogue rules (a pure function from a turn to
a reply), the urgent-path decision, the texts channels send on their own, and
the settings read from the environment. tests/test_architecture.py keeps Rasa out.
"""
