# sql/: see ARCHITECTURE.md
