"""The rules of the ZSM domain, free of I/O: commands, reports and integrations all call these."""
