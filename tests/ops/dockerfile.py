"""Just enough of a Dockerfile and .dockerignore reader to check them without a Docker engine.

Handles what our Dockerfile uses: global ARGs with defaults in FROM, ``FROM image AS name``, line continuations,
comments, exec-form (JSON) and shell-form instructions, and instructions inherited from a parent stage.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Instruction:
    keyword: str  # upper case
    value: str  # the rest of the line, continuations joined
    line: int


@dataclass
class Stage:
    name: str
    base: str  # an image, or the name of an earlier stage
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [item for item in self.instructions if item.keyword == keyword]


@dataclass
class Dockerfile:
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)

    def chain(self, name: str) -> list[Stage]:
        """The stage and its ancestors among the file's stages, the root first."""
        names = {stage.name for stage in self.stages}
        chain = [self.stage(name)]
        while chain[0].base in names:
            chain.insert(0, self.stage(chain[0].base))
        return chain

    def effective(self, name: str, keyword: str) -> Instruction | None:
        """The last ``keyword`` instruction in force for stage ``name`` (ENTRYPOINT, CMD, USER, HEALTHCHECK ...)."""
        found = None
        for stage in self.chain(name):
            for item in stage.all(keyword):
                found = item
        return found

    def inherited(self, name: str, keyword: str) -> list[Instruction]:
        return [item for stage in self.chain(name) for item in stage.all(keyword)]

    def env(self, name: str) -> dict[str, str]:
        """ENV of the stage, inherited ones included (``KEY=VALUE`` pairs; ``$PATH``-style values left as written)."""
        values: dict[str, str] = {}
        for item in self.inherited(name, "ENV"):
            for pair in shlex.split(item.value):
                key, _, value = pair.partition("=")
                values[key] = value
        return values


def parse(text: str) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for item in _instructions(text):
        if item.keyword == "ARG" and not stages:
            key, _, default = item.value.partition("=")
            args[key.strip()] = default.strip()
        elif item.keyword == "FROM":
            words = item.value.split()
            name = f"stage-{len(stages)}"
            if len(words) >= 3 and words[-2].upper() == "AS":
                name, words = words[-1], words[:-2]
            image = re.sub(r"\$\{?(\w+)\}?", lambda match: args.get(match.group(1), ""), words[-1])
            stages.append(Stage(name, image))
        elif stages:
            stages[-1].instructions.append(item)
    return Dockerfile(stages)


def exec_form(item: Instruction) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT/CMD); ValueError for the shell form."""
    try:
        value = json.loads(item.value)
    except json.JSONDecodeError:
        raise ValueError(f"line {item.line}: {item.keyword} is not in exec (JSON array) form: {item.value}") from None
    if not (isinstance(value, list) and all(isinstance(part, str) for part in value)):
        raise ValueError(f"line {item.line}: {item.keyword} must be a JSON array of strings")
    return value


def copy_sources(item: Instruction) -> tuple[dict[str, str], list[str]]:
    """(flags such as ``from``/``chown``, source paths) of a COPY or ADD instruction."""
    words = exec_form(item) if item.value.startswith("[") else shlex.split(item.value)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    return flags, words[:-1]


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` ``patterns`` exclude ``path`` (a path relative to the context, no leading ./).

    Docker's rules: a pattern matches the path or any of its parent folders; ``!`` re-includes; the last match wins.
    """
    parts = Path(path).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        if any(_match(pattern, candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def read_ignore(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def _match(pattern: str, path: str) -> bool:
    if "**" in pattern:
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        regex = regex.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")
        return re.fullmatch(regex, path) is not None
    return len(Path(pattern).parts) == len(Path(path).parts) and fnmatch.fnmatchcase(path, pattern)


def _instructions(text: str) -> list[Instruction]:
    items: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        keyword, _, value = buffer.strip().partition(" ")
        items.append(Instruction(keyword.upper(), value.strip(), start))
        buffer = ""
    return items
