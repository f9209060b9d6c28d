"""Receipts: the receipt model, canonical JSON, SSHSIG signing and verification, keys."""
