"""Sub-commands of the ``asimc`` CLI beyond ``asimc chip`` (which lives with the language)."""
