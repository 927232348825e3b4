"""``rso presets [list | show | save | delete]``, and ``--save-preset`` for the training commands."""

from __future__ import annotations

import argparse

from .. import presets
from ..config import RunConfig
from .options import config_from_args


def save_preset_options(p: argparse.ArgumentParser) -> None:
    """``--save-preset NAME``, ``--description`` and ``--overwrite`` for a training command."""
    g = p.add_argument_group("presets")
    g.add_argument("--save-preset", metavar="NAME", help="also save this run's settings as your preset NAME")
    g.add_argument("--description", metavar="TEXT", help="the saved preset's description")
    g.add_argument("--overwrite", action="store_true", help="replace an existing user preset of that name")


def preset_description(args: argparse.Namespace, cfg: RunConfig) -> str | None:
    """--description, or for settings derived from a preset, what they changed (not the preset's own text)."""
    if args.description is not None or not getattr(args, "preset", None):
        return args.description
    old, new = presets.load_preset(args.preset).to_dict(), cfg.to_dict()
    changed = [f"{k}={new[k]}" for k in new if k != "notes" and new[k] != old[k]]
    return f"based on preset {args.preset}" + (f"; changed: {', '.join(changed)}" if changed else "")


def maybe_save_preset(args: argparse.Namespace, cfg: RunConfig) -> None:
    """Save ``cfg`` as the user preset ``--save-preset`` names, if it names one."""
    if getattr(args, "save_preset", None):
        path = presets.save_preset(args.save_preset, cfg, preset_description(args, cfg), overwrite=args.overwrite)
        print(f"preset {args.save_preset!r} saved to {path}")


def add_parser(sub, run: argparse.ArgumentParser) -> None:
    """Register ``rso presets`` (``run``: the shared run options, for ``presets save``)."""
    p = sub.add_parser("presets", help="list, show, save or delete presets",
                       description="Presets are named run configs: built-in ones shipped with rso and your own "
                                   "(saved in $RSO_CONFIG_DIR/presets, else in the user config folder: "
                                   "$XDG_CONFIG_HOME/rso/presets or ~/.config/rso/presets on Linux)"
                                   ". Without an action, list them.")
    p.set_defaults(handler=cmd_presets)
    ps = p.add_subparsers(dest="action", metavar="ACTION")
    ps.add_parser("list", help="list the presets (the default)")
    show = ps.add_parser("show", help="print a preset's description and config JSON")
    show.add_argument("name", metavar="NAME")
    save = ps.add_parser("save", parents=[run], help="save settings as your own preset",
                         description="Save a run config as your preset NAME: from a config file (--from-config), "
                                     "a preset (--preset) and/or run options.")
    save.add_argument("name", metavar="NAME")
    save.add_argument("--from-config", dest="config", metavar="FILE", help="the run config JSON file to save")
    save.add_argument("--description", metavar="TEXT", help="one paragraph shown in lists")
    save.add_argument("--overwrite", action="store_true", help="replace an existing user preset of that name")
    save.add_argument("--shadow-builtin", action="store_true",
                      help="allow a built-in's name (your preset then hides the built-in)")
    delete = ps.add_parser("delete", help="delete one of your presets")
    delete.add_argument("name", metavar="NAME")


def cmd_presets(args: argparse.Namespace) -> int:
    """List, show, save or delete presets."""
    action = args.action or "list"
    if action == "list":
        items = presets.list_presets()
        width = max((len(p.name) for p in items), default=4)
        for p in items:
            desc = p.description if len(p.description) <= 100 else p.description[:99] + "…"
            print(f"{p.name:{width}s}  {p.source:10s}  {desc}")
        print(f"\nyour presets live in {presets.user_presets_dir()}; use one with `rso train --preset NAME`")
    elif action == "show":
        preset = presets.find_preset(args.name)
        cfg = preset.load()
        print(f"{preset.name} ({preset.source}, {preset.path})")
        if preset.description:
            print(preset.description)
        print(cfg.to_json())
    elif action == "save":
        cfg = config_from_args(args)
        path = presets.save_preset(args.name, cfg, preset_description(args, cfg), overwrite=args.overwrite,
                                   shadow_builtin=args.shadow_builtin)
        print(f"preset {args.name!r} saved to {path}")
    elif action == "delete":
        print(f"deleted {presets.delete_preset(args.name)}")
    return 0
