"""Earning: purchases recorded by merchants and the rules that turn them into points."""
