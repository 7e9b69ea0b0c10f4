"""What a reader sees: report.html (``html``), the three-line verdict, the hubverse export."""
