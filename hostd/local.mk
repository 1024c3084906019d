# hostd/: see ARCHITECTURE.md
