"""Generation backends behind one interface (`backend.py`): hosted NVIDIA, NIM and draft."""
