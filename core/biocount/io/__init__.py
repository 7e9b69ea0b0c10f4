"""Reading and writing: study files and the demo, simulated studies, atomic output folders."""
