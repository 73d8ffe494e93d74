"""The web UI's vendored QR encoder (public/js/vendor/uqr.js) is the npm
package pinned in package.json, unchanged, with its licence kept."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_vendored_qr_encoder_is_the_pinned_package_unchanged():
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["uqr"]
    installed = json.loads((ROOT / "node_modules/uqr/package.json").read_text())["version"]
    assert installed == pinned
    vendored = (ROOT / "public/js/vendor/uqr.js").read_text()
    assert vendored.startswith(f"/*! uqr {pinned} (npm)")
    assert "MIT License" in vendored.split("*/", 1)[0], "the licence travels with the code"
    assert vendored.split(" */\n", 1)[1] == (ROOT / "node_modules/uqr/dist/index.mjs").read_text()
