"""Helpers shared by the classic scripts, in the shape of pyvmomi-community-samples' ``tools`` package."""
