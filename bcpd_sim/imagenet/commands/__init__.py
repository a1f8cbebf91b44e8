"""``bcpd-sim imagenet <command>`` modules, discovered like the top-level commands."""
