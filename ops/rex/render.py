#!/usr/bin/python3
"""Renders one of the Ansible roles' templates for the Rexfile, the way Ansible's template module does
(Jinja2 with trim_blocks, the trailing newline kept, `ansible_managed` as Ansible's default), so a file
Rex writes is byte for byte the file the role writes and neither tool "changes" the other's work.

    render.py TEMPLATE < vars.json      (prints the result; an undefined variable is an error)

Only what the templates Rex renders use is provided: the `bool` filter besides Jinja's own.
"""

import json
import sys

import jinja2


def to_bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "on", "1", "true", "y", "t")
    return bool(value)


def main() -> int:
    path = sys.argv[1]
    variables = json.load(sys.stdin)
    variables.setdefault("ansible_managed", "Ansible managed")
    env = jinja2.Environment(
        trim_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["bool"] = to_bool
    with open(path, encoding="utf-8") as f:
        template = env.from_string(f.read())
    sys.stdout.write(template.render(**variables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
