"""Typed async query functions, session first, keyword-only filters. Never commit here."""
