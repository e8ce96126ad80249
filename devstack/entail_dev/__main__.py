"""``python -m entail_dev``: the local stack (what ``entail up`` runs)."""

from entail.up import run

if __name__ == "__main__":
    raise SystemExit(run())
