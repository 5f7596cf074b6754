"""How a job reaches the hosts: SSH or local sessions, the runner bundle streamed over them, one
host's run, the fleet fan-out and the blast-radius survey."""
