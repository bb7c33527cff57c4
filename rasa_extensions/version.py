"""The Rasa versions our extensions were written and tested against.

Every extension relies on Rasa internals (a module global, a private method, a
table name), which a Rasa release may change without notice. So each one refuses
to run on a Rasa it was not checked against, with a sentence that says what to do,
instead of silently doing something else; tests/test_rasa_contracts.py fails
first when an upgrade moves one of those internals.
"""

from __future__ import annotations

SUPPORTED_RASA = ("3.6.21",)
SUPPORTED_RASA_SDK = ("3.6.2",)


class UnsupportedRasaVersion(RuntimeError):
    """Rasa is not a version these extensions were checked against."""


def check_rasa_version(installed: str | None = None) -> str:
    """The installed Rasa version; raises UnsupportedRasaVersion when it is not supported."""
    if installed is None:
        from rasa.version import __version__ as installed  # type: ignore[no-redef]  # rasa ships no types
    if installed not in SUPPORTED_RASA:
        raise UnsupportedRasaVersion(
            f"Rasa {installed} is installed, but the clinic assistant's Rasa extensions (rasa_extensions/) were "
            f"checked against Rasa {', '.join(SUPPORTED_RASA)} only. Install the pinned version "
            "(make install, from requirements.lock), or run `make test` on the new version and, when "
            "tests/test_rasa_contracts.py passes, add it to SUPPORTED_RASA in rasa_extensions/version.py."
        )
    return installed


def check_rasa_sdk_version(installed: str | None = None) -> str:
    """The installed Rasa SDK version; raises UnsupportedRasaVersion when it is not supported."""
    if installed is None:
        from rasa_sdk.version import __version__ as installed  # type: ignore[no-redef]
    if installed not in SUPPORTED_RASA_SDK:
        raise UnsupportedRasaVersion(
            f"Rasa SDK {installed} is installed, but rasa_extensions/action_server.py was checked against "
            f"{', '.join(SUPPORTED_RASA_SDK)} only. Install the pinned version (make install), or add it to "
            "SUPPORTED_RASA_SDK in rasa_extensions/version.py once tests/test_rasa_contracts.py passes on it."
        )
    return installed
