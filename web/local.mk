# web/: see ARCHITECTURE.md
