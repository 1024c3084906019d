# cli/: see ARCHITECTURE.md
