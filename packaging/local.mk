# packaging/: see ARCHITECTURE.md
