"""The chat channels credentials.yml lists: REST (used by the widget), the website, Telegram.

Importing them changes nothing in Rasa: changes to Rasa's own behaviour live in
rasa_extensions/ and are installed explicitly by its launcher.
"""
