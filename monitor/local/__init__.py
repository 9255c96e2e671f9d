"""Laptop-only: the embedded servers, the demo, local on-call channel stand-ins."""
