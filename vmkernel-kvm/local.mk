# vmkernel-kvm/: see ARCHITECTURE.md
