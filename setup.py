"""Packaging beyond what pyproject.toml can say: the reply templates and the example
configurations live at the top of the repository (`templates/`, `config/`) and go into the
wheel as `mailbot/templates/` and `mailbot/example_configs/`, where
`mailbot.replies.render` and `mailbot.config.examples` find them in an installed mailbot."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["mailbot*", "parsers*"]), "mailbot.templates",
              "mailbot.example_configs"],
    package_dir={"mailbot.templates": "templates", "mailbot.example_configs": "config"},
    # web/static/: the console's stylesheet (templates/web/ holds its page templates).
    package_data={"parsers": ["layouts/*.toml"],
                  "mailbot.templates": ["*/*.j2", "*/*.toml", "web/static/*"],
                  "mailbot.example_configs": ["*.toml"]},
)
