"""The command line main() is running, hoisted: `--nproc N` starts it again in each process."""

ARGV: list[str] = []
