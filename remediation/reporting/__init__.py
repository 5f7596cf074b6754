"""What a run leaves behind: report data and its folder, the terminal and HTML views, the run
history and webhook alerts."""
