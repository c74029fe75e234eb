"""Packaging beyond what pyproject.toml can say: the reply templates live at the top of the
repository (`templates/`) and go into the wheel as `mailbot/templates/`, where
`mailbot.replies.render` finds them in an installed mailbot."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["mailbot*", "parsers*"]), "mailbot.templates"],
    package_dir={"mailbot.templates": "templates"},
    package_data={"parsers": ["layouts/*.toml"], "mailbot.templates": ["*/*.j2", "*/*.toml"]},
)
