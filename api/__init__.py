"""Interfaces to lastmile: the command line and (later) the HTTP API."""
