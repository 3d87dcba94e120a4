"""Suite-wide fixtures live in the opsproof plugin (opsproof/plugin.py, loaded through its pytest11 entry
point); this file only marks the repository root for pytest's rootdir and holds nothing else."""
