"""``python -m trialkit`` runs the command-line interface."""

from trialkit.cli import main

if __name__ == "__main__":
    main()
