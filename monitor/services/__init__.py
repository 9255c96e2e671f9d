"""Services that apply the pure policies to the stores and the notifiers."""
