"""A small agent-orchestration API (patterns, executions, agents) to put bastion in front of."""
