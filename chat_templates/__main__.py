"""`python -m interns1_plugin.chat_templates NAME` prints the path to pass as `--chat-template`."""

from __future__ import annotations

import sys

from interns1_plugin.chat_templates import TEMPLATE_NAMES, template_path


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in TEMPLATE_NAMES:
        print(
            f"usage: python -m interns1_plugin.chat_templates {{{','.join(TEMPLATE_NAMES)}}}",
            file=sys.stderr,
        )
        return 2
    print(template_path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
