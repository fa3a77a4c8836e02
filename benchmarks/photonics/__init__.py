"""Photonic-crystal benchmark: MPB / legume band structures of 2-D unit cells, DOS regression with E-SSL."""
