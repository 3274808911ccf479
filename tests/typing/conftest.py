# These files are read by mypy (tests/test_typing.py), not collected by pytest:
# --doctest-modules would import them, and wrong_code.py fails on purpose.
collect_ignore = ["user_code.py", "wrong_code.py"]
