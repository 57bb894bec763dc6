"""The README's configuration table is the settings object's own description of itself."""

from __future__ import annotations

import re

from pantau.cli import main
from pantau.settings import REPO_ROOT, Settings, settings_table

TABLE = re.compile(r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", re.S)


def test_the_readme_lists_every_setting_as_the_code_defines_it():
    match = TABLE.search((REPO_ROOT / "README.md").read_text())
    assert match, "README.md lost its settings-table markers"
    assert match[1] == settings_table(), "README settings table is stale: paste `.venv/bin/pantau settings` in"


def test_every_setting_says_what_it_does():
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert not undescribed, f"settings without a description: {undescribed}"


def test_pantau_settings_prints_one_row_per_environment_variable(capsys):
    assert main(["settings"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [name.upper() for name in Settings.model_fields]
