"""What every section of the configuration shares: the strict base model, and the error that lists problems."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as 'key: what is wrong'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Strict(BaseModel):
    """A section of the configuration: an unknown key is refused, and the loaded values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)
