from biocount.cli import main

main()
