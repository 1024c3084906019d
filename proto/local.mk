# proto/: see ARCHITECTURE.md
