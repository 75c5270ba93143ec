"""Render the config schema as the Markdown reference in ``config/README.md``.

The schema is the single source of every key's meaning and default; ``python -m bayesrb.configdoc``
regenerates the reference and a test checks the committed file is current.
"""

import json
import sys
from pathlib import Path

import yaml

SCHEMA = Path("workflow/schemas/config.schema.yaml")
INTRO = """# Configuration reference

`config/config.yaml` is the embedded default: a small simulated survey that runs on a laptop.
`.test/config/config.yaml` is the tiny configuration the test suite runs end to end.
To run an ablation, copy `config/config.yaml`, change the keys you need and run
`snakemake --cores all --configfile config/my-ablation.yaml` (keys you leave out take the defaults
below). Snakemake validates the config against `workflow/schemas/config.schema.yaml` before
anything runs: an unknown key or a value of the wrong type stops the run with a message naming it.

This file is generated from the schema: `python -m bayesrb.configdoc > config/README.md`.
"""


def _rows(properties: dict, prefix: str = "") -> list[str]:
    rows = []
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        if spec.get("type") == "object" and "properties" in spec:
            rows.append(f"\n## `{key}`\n\n{spec['description'].strip()}\n")
            rows.append("| key | type | default | meaning |\n|---|---|---|---|")
            rows.extend(_rows(spec["properties"], prefix=f"{key}."))
        else:
            kind = spec.get("type", "")
            if "enum" in spec:
                kind += " (" + " \\| ".join(map(str, spec["enum"])) + ")"
            default = json.dumps(spec.get("default"))
            description = " ".join(spec["description"].split()).replace("|", "\\|")
            rows.append(f"| `{key}` | {kind} | `{default}` | {description} |")
    return rows


def render(schema_path: Path = SCHEMA) -> str:
    """Return the Markdown reference of every key of the schema at ``schema_path``."""
    schema = yaml.safe_load(schema_path.read_text())
    top_level = {k: v for k, v in schema["properties"].items() if v.get("type") != "object"}
    sections = {k: v for k, v in schema["properties"].items() if v.get("type") == "object"}
    lines = [INTRO, "## Top level\n", "| key | type | default | meaning |\n|---|---|---|---|"]
    lines += _rows(top_level) + _rows(sections)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
