"""Every committed deployment file, from its one generator.

    python -m deploy.generate          # rewrite them
    python -m deploy.generate --check  # exit 1 if one is not what its generator makes

Traefik's, for the local and production setups (deploy/traefik_config.py,
deploy/traefik/<setup>/), and production's Prometheus configuration
(deploy/prometheus_config.py, deploy/prometheus/prometheus.yml). The local
cluster writes its own Prometheus file at start, with its ports.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy import prometheus_config, traefik_config


def committed_files() -> dict[Path, str]:
    """Each committed file and what its generator makes of it now."""
    files = {
        traefik_config.TRAEFIK_DIR / name / file_name: text
        for name, setup in traefik_config.committed_setups().items()
        for file_name, text in traefik_config.rendered_files(setup).items()
    }
    files[prometheus_config.PRODUCTION_FILE] = prometheus_config.render(prometheus_config.PRODUCTION)
    return files


def stale_files() -> list[Path]:
    """Committed files that differ from what their generator makes now."""
    return [path for path, text in committed_files().items() if not path.exists() or path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"out of date: {path.relative_to(traefik_config.REPO)} (run python -m deploy.generate)")
        return 1 if stale else 0
    for path, text in committed_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(traefik_config.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
