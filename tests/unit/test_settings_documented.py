"""Every setting is documented, in `.env.example` and in the README's Settings
table, with the default it really has. A setting added without its words fails
here (on purpose, at merge time too)."""

import re
from pathlib import Path

import pytest

from entrypoints.configuration import variable
from entrypoints.settings import Settings

ROOT = Path(__file__).parents[2]
FIELDS = sorted(Settings.model_fields)


def example() -> dict[str, str]:
    """The `# TASKHUB_X=value` lines of .env.example, uncommented."""
    pairs = re.findall(
        r"^#?\s*(TASKHUB_[A-Z0-9_]+)=(.*)$",
        (ROOT / ".env.example").read_text(),
        flags=re.MULTILINE,
    )
    return dict(pairs)


def readme_settings() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("field", FIELDS)
def test_every_setting_is_in_the_env_example(field: str) -> None:
    assert variable(field) in example(), f"{variable(field)} is not in .env.example"


@pytest.mark.parametrize("field", FIELDS)
def test_every_setting_has_a_row_in_the_readme_settings_table(field: str) -> None:
    rows = [line for line in readme_settings().splitlines() if line.startswith("|")]
    assert any(f"`{variable(field)}`" in row for row in rows), (
        f"{variable(field)} has no row in the README's Settings table"
    )


def test_the_env_example_names_no_setting_that_does_not_exist() -> None:
    known = {variable(field) for field in FIELDS}
    assert set(example()) <= known


def test_the_env_example_uncommented_gives_exactly_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for field in FIELDS:
        monkeypatch.delenv(variable(field), raising=False)
    # An empty value stands for "unset" (None), as the comments say.
    dotenv = tmp_path / ".env"
    dotenv.write_text("".join(f"{k}={v}\n" for k, v in example().items() if v))
    from_example = Settings(_env_file=dotenv)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    for field in FIELDS:
        assert getattr(from_example, field) == getattr(defaults, field), field
