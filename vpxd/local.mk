# vpxd/: see ARCHITECTURE.md
