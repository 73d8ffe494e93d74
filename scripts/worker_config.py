"""Writes a second Worker's config (the engine's, the account Worker's) for a
local run, with [vars] overridden.

`wrangler dev -c wrangler.toml -c <engine config> -c <account config>` serves
the three Workers in one process (bindings, the queue and local D1 shared),
but `--var` and `--env-file` reach only the first config, the API. So a local
run that sets variables (tests, `make dev`, `make bench`) gets its own copy of
wrangler.engine.toml and wrangler.account.toml, as JSON (which wrangler also
reads), with those values in `vars`, `main` made absolute and no `build` (the
API's build builds all three).

    python3 scripts/worker_config.py DEST.json SOURCE.toml [KEY=VALUE ...]
"""
from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The configs a local run writes, each beside the API's wrangler.toml.
ENGINE = ROOT / "wrangler.engine.toml"
ACCOUNT = ROOT / "wrangler.account.toml"


def render(config: dict, overrides: dict[str, str], root: Path = ROOT) -> dict:
    out = {k: v for k, v in config.items() if k != "build"}
    out["main"] = str(root / config["main"])
    out["vars"] = {**config.get("vars", {}), **overrides}
    return out


def write(dest: Path, overrides: dict[str, str], source: Path = ENGINE) -> Path:
    config = tomllib.loads(Path(source).read_text())
    dest.write_text(json.dumps(render(config, overrides), indent=2))
    return dest


def write_all(state: Path, overrides: dict[str, str],
              account_overrides: dict[str, str] | None = None) -> list[Path]:
    """The engine's and the account Worker's configs in `state`, in the order
    `wrangler dev` takes them after wrangler.toml."""
    return [write(Path(state) / "wrangler.engine.json", overrides, ENGINE),
            write(Path(state) / "wrangler.account.json", {**overrides, **(account_overrides or {})}, ACCOUNT)]


if __name__ == "__main__":
    write(Path(sys.argv[1]), dict(a.split("=", 1) for a in sys.argv[3:]), ROOT / sys.argv[2])
