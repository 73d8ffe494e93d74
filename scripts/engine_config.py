"""Writes the engine Worker's config for a local run, with [vars] overridden.

`wrangler dev -c wrangler.toml -c <engine config>` serves both Workers in one
process (the Gate binding, the queue and local D1 shared), but `--var` and
`--env-file` reach only the first config, the API. So a local run that sets
variables (tests, `make dev`, `make bench`) gets its own copy of
wrangler.engine.toml, as JSON (which wrangler also reads), with those values in
`vars`, `main` made absolute and no `build` (the API's build builds both).

    python3 scripts/engine_config.py DEST.json [KEY=VALUE ...]
"""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "wrangler.engine.toml"


def render(config: dict, overrides: dict[str, str], root: Path = ROOT) -> dict:
    out = {k: v for k, v in config.items() if k != "build"}
    out["main"] = str(root / config["main"])
    out["vars"] = {**config.get("vars", {}), **overrides}
    return out


def write(dest: Path, overrides: dict[str, str]) -> Path:
    config = tomllib.loads(SOURCE.read_text())
    dest.write_text(json.dumps(render(config, overrides), indent=2))
    return dest


if __name__ == "__main__":
    write(Path(sys.argv[1]), dict(a.split("=", 1) for a in sys.argv[2:]))
